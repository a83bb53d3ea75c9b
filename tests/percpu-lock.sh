#!/bin/sh
# percpu-lock.sh - the cache and magazine suites again with KMEM_PERCPU=lock,
# so that both per-CPU modes pass the same tests.
set -e
KMEM_PERCPU=lock ./tests/check_cache
KMEM_PERCPU=lock ./tests/check_magazine
