"""The "Python 3 (medagent sandbox)" kernel spec: a notebook kernel in the same bubblewrap sandbox as the
kernels medagent starts, so a model backend's cells can run in the user's own kernel (variables shared)
without running outside the boundary.

``medagent kernelspec install [--user|--sys-prefix]`` installs it. Jupyter starts
``python -m jupyter_medagent.isolation.kernelspec -f CONNECTION-FILE`` on the host; that process starts
the kernel in bubblewrap (read-only root, no capabilities, the seccomp filter, no network, no secrets,
the notebook's folder read-only and de-identified where it holds DICOM, its ``medagent_output/`` folder the
only writable place, the working directory the notebook's folder) and relays the five channels between the TCP ports Jupyter
chose and the kernel's IPC sockets in a private folder (the kernel has no network to listen on). The
kernel never sees Jupyter's connection file or runtime folder, only its own connection details. What the
kernel shows reaches the browser only through the relay, cleaned (``outputs``): the kernel may run code a
model wrote, so nothing it outputs is rendered as trusted HTML or JavaScript.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPEC_NAME = "medagent-sandbox"
DISPLAY_NAME = "Python 3 (medagent sandbox)"
CHANNELS = ("shell", "iopub", "stdin", "control", "hb")
KERNEL_MARK = "MEDAGENT_SANDBOX_KERNEL"  # set in the sandbox kernel's environment
OUTPUT_FOLDER = "medagent_output"  # next to the notebook: the only folder the sandbox kernel writes
OUTPUT_MARK = "MEDAGENT_OUTPUT_DIR"  # its path, in the kernel's environment
ROUTING_ID = b"medagent-sandbox"  # the relay's identity on shell and stdin: the kernel answers input there


def spec_json() -> dict:
    from jupyter_medagent.isolation.sandbox import python_module

    # Jupyter starts this on the host, its working directory the notebook's folder: -P (python_module).
    return {"argv": [*python_module("jupyter_medagent.isolation.kernelspec"), "-f", "{connection_file}"],
            "display_name": DISPLAY_NAME, "language": "python", "interrupt_mode": "message",
            "metadata": {"medagent": {"sandbox": True}}}


def install(*, user: bool = False, prefix: str | None = None) -> str:
    """Install the kernel spec (for this user, or into ``prefix``); returns the folder it went to."""
    from jupyter_client.kernelspec import KernelSpecManager

    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "kernel.json").write_text(json.dumps(spec_json(), indent=1))
        return KernelSpecManager().install_kernel_spec(folder, SPEC_NAME, user=user, prefix=prefix)


def is_sandbox_kernel(kernel_name: str | None) -> bool:
    return kernel_name == SPEC_NAME


def in_sandbox_kernel() -> bool:
    """Whether this process is a "Python 3 (medagent sandbox)" kernel: started by its launcher, and
    measurably confined (no capabilities, no_new_privs, a seccomp filter)."""
    from jupyter_medagent.isolation.launch import capability_problem

    if os.environ.get(KERNEL_MARK) != "1" or capability_problem():
        return False
    with open("/proc/self/status") as status:
        fields = dict(line.rstrip("\n").split(":\t", 1) for line in status if ":\t" in line)
    return fields.get("NoNewPrivs") == "1" and fields.get("Seccomp") == "2"


def notebook_folder_problem(folder: str) -> str | None:
    """Why the sandbox cannot show ``folder`` (the notebook's), read-only, or None."""
    from jupyter_medagent.isolation.sandbox import hidden_dirs

    folder = os.path.realpath(folder)
    home = os.path.realpath(os.path.expanduser("~"))
    if folder == home or any(h == folder or h.startswith(folder.rstrip("/") + "/") for h in [*hidden_dirs(), "/"]):
        return (f"{folder} holds folders the sandbox hides (home, temporary files, Jupyter's runtime folder); "
                "keep the notebook in a project folder of its own")
    return None


def output_folder(notebook_folder: str) -> str:
    """The sandbox kernel's one writable folder, made if missing: ``OUTPUT_FOLDER`` next to the notebook
    (the notebook's own folder stays read-only: it may hold a virtualenv, the package or a sys.path entry,
    where a planted file would run on the host). Raises ConfigError where it is a link or may not be written."""
    from jupyter_medagent.contracts.errors import ConfigError
    from jupyter_medagent.isolation.sandbox import writable_folder_problem

    folder = os.path.join(os.path.realpath(notebook_folder), OUTPUT_FOLDER)
    os.makedirs(folder, exist_ok=True)
    if os.path.islink(folder) or not os.path.isdir(folder):
        raise ConfigError(f"{folder} must be a folder, not a link")
    problem = writable_folder_problem(folder)
    if problem:
        raise ConfigError(problem)
    return folder


def _kernel_connection(host: dict, runtime: str) -> dict:
    """The kernel's own connection file: IPC sockets in ``runtime``, the same key and signature scheme."""
    return {"transport": "ipc", "ip": os.path.join(runtime, "kernel"), "key": host["key"],
            "signature_scheme": host.get("signature_scheme", "hmac-sha256"),
            **{f"{channel}_port": index for index, channel in enumerate(CHANNELS, start=1)}}


def _relay(host: dict, kernel: dict):
    """One relay thread per channel: Jupyter's TCP port on one side, the kernel's IPC socket on the other.
    What the kernel sends on shell and iopub is made inert for the browser (``outputs.Rewriter``)."""
    import threading

    import zmq

    from jupyter_medagent.isolation.outputs import Rewriter

    kinds = {"shell": (zmq.ROUTER, zmq.DEALER), "control": (zmq.ROUTER, zmq.DEALER),
             "stdin": (zmq.ROUTER, zmq.DEALER), "hb": (zmq.ROUTER, zmq.DEALER), "iopub": (zmq.XPUB, zmq.XSUB)}
    rewriter = Rewriter(host["key"], host.get("signature_scheme", "hmac-sha256"))
    context = zmq.Context.instance()
    threads = []
    for channel in CHANNELS:
        front, back = context.socket(kinds[channel][0]), context.socket(kinds[channel][1])
        for sock in (front, back):
            sock.setsockopt(zmq.LINGER, 0)
        if channel in ("shell", "stdin"):
            back.setsockopt(zmq.ROUTING_ID, ROUTING_ID)
        front.bind(f"tcp://{host.get('ip') or '127.0.0.1'}:{host[f'{channel}_port']}")
        back.connect(f"ipc://{kernel['ip']}-{kernel[f'{channel}_port']}")
        rewrite = rewriter.rewrite if channel in ("shell", "iopub") else None
        thread = threading.Thread(target=_forward, args=(front, back, rewrite), name=f"relay-{channel}", daemon=True)
        thread.start()
        threads.append(thread)
    return threads


def _forward(front, back, rewrite) -> None:
    """Pass messages both ways; the kernel's through ``rewrite`` (None drops one) when it is given."""
    import zmq

    poller = zmq.Poller()
    poller.register(front, zmq.POLLIN)
    poller.register(back, zmq.POLLIN)
    while True:
        for sock, _ in poller.poll():
            frames = sock.recv_multipart()
            if sock is front:
                back.send_multipart(frames)
                continue
            if rewrite is not None:
                try:
                    frames = rewrite(frames)
                except Exception:  # fail closed: a message that cannot be checked is not shown
                    frames = None
            if frames is not None:
                front.send_multipart(frames)


def main(argv: list[str] | None = None) -> int:
    from jupyter_medagent.isolation.sandbox import (SANDBOX_HOME, KernelLimits, bwrap_argv, data_view,
                                                    kernel_environment, python_module, sandbox_problem)

    parser = argparse.ArgumentParser(prog="jupyter_medagent.isolation.kernelspec")
    parser.add_argument("-f", dest="connection_file", required=True)
    args = parser.parse_args(argv)
    from jupyter_medagent.contracts.errors import ConfigError

    notebook = os.path.realpath(os.getcwd())
    problem = sandbox_problem() or notebook_folder_problem(notebook)
    try:
        output = None if problem else output_folder(notebook)
    except (ConfigError, OSError) as exc:
        problem = str(exc)
    if problem:
        print(f"{DISPLAY_NAME}: cannot start the sandbox: {problem}", file=sys.stderr)
        return 2
    host = json.loads(Path(args.connection_file).read_text())
    runtime = tempfile.mkdtemp(prefix="medagent-kernel-")
    try:
        kernel = _kernel_connection(host, runtime)
        connection = os.path.join(runtime, "kernel.json")
        fd = os.open(connection, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(kernel, handle)
        environment = {**kernel_environment(home=SANDBOX_HOME), "JPY_PARENT_PID": "1", KERNEL_MARK: "1",
                       OUTPUT_MARK: output}
        # The notebook's folder read-only, de-identified where it holds DICOM (the view is cached: a restart
        # redoes only changed files), its output folder writable, the kernel working in the notebook's folder.
        command = bwrap_argv(output_dir=output, data_dir=notebook, runtime_dir=runtime, environment=environment,
                             data_view=data_view(notebook, writable=output), cwd=notebook) + [
            *python_module("jupyter_medagent.isolation.launch"), *KernelLimits.default().launcher_args(),
            "--", "-f", connection]
        child = subprocess.Popen(command, env=kernel_environment())
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda *_: child.terminate())
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # interrupts travel as control messages
        # Jupyter's ports open only once the kernel listens behind them, as a kernel's own would: a heartbeat
        # relayed to a kernel still starting would be missed, and the client would take it for dead.
        sockets = [f"{kernel['ip']}-{kernel[f'{channel}_port']}" for channel in CHANNELS]
        while not all(os.path.exists(path) for path in sockets):
            if child.poll() is not None:
                return child.returncode
            time.sleep(0.05)
        _relay(host, kernel)
        return child.wait()
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
