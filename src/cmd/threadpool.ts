/**
 * Imported first by skiffd: libuv's thread pool (file system work, DNS, crypto) has 4 threads by
 * default, and with dozens of pods starting at once skiffd's file work queued behind itself.
 * Must run before anything uses the pool, which starts on first use.
 */
process.env.UV_THREADPOOL_SIZE ??= "16";
