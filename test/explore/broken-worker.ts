/** A worker module that fails while loading (test/explore/pool.test.ts). */
throw new Error('this worker module fails to load');
