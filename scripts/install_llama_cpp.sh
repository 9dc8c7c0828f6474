#!/usr/bin/env bash
# Install llama-cpp-python[server] (CPU build) for the OpenAI-backend tests.
#
# PyPI ships only an sdist, which compiles llama.cpp (7+ minutes on 2 cores), so the wheel
# is built once into a cache directory and reused: a second run on the same machine takes
# seconds. The wheel is installed with --no-deps (its numpy pin must not move ours) and the
# server's runtime deps are installed by name.
#
#   bash scripts/install_llama_cpp.sh            # build-or-reuse, install
#   LLAMA_CPP_VERSION=0.3.36 WHEEL_CACHE=/path bash scripts/install_llama_cpp.sh
set -euo pipefail

VERSION="${LLAMA_CPP_VERSION:-0.3.36}"
# The wheel is built for this CPU (GGML_NATIVE=ON: a generic x86-64 build runs llama.cpp's
# scalar kernels, ~10x slower), so the cache is keyed by the CPU's feature flags.
CPU_KEY=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | md5sum | cut -c1-10 || echo generic)
CACHE="${WHEEL_CACHE:-${HOME}/.cache/agentdistill-wheels}/cpu-${CPU_KEY}"
PY="${PYTHON:-python}"
mkdir -p "$CACHE"

if "$PY" -c "import llama_cpp, sys; sys.exit(llama_cpp.__version__ != '$VERSION')" 2>/dev/null; then
    echo "llama-cpp-python $VERSION already installed"
else
    wheel=$(ls "$CACHE"/llama_cpp_python-"$VERSION"-*.whl 2>/dev/null | head -n1 || true)
    if [ -z "$wheel" ]; then
        echo "building llama-cpp-python $VERSION (CPU only) into $CACHE ..."
        CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=ON -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_BLAS=OFF -DGGML_OPENMP=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF -DLLAVA_BUILD=OFF}" \
        CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
            "$PY" -m pip wheel --no-deps -w "$CACHE" "llama-cpp-python==$VERSION"
        wheel=$(ls "$CACHE"/llama_cpp_python-"$VERSION"-*.whl | head -n1)
    fi
    "$PY" -m pip install --no-deps "$wheel"
fi
# llama-cpp-python's own deps and its [server] extra; unpinned names keep installed versions
"$PY" -m pip install numpy jinja2 typing-extensions pyyaml diskcache 'fastapi>=0.100.0' 'uvicorn>=0.22.0' 'sse-starlette>=1.6.1' \
    'starlette-context>=0.3.6,<0.4' 'pydantic-settings>=2.0.1'
"$PY" -c "import llama_cpp, llama_cpp.server.app; print('llama-cpp-python', llama_cpp.__version__, 'ok')"
