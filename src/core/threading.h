// One thread pool for the whole process: OpenMP's. oneDNN (built against the OpenMP runtime)
// and our own kernels share it, so threads are never oversubscribed.
#pragma once

namespace kpt {

int num_threads();
// n <= 0 restores the default (OMP_NUM_THREADS or the number of cores).
void set_num_threads(int n);

}  // namespace kpt
