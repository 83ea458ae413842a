"""The process boundary, tried from inside real sandboxed kernels, with the runtime guard left out (it is
defence in depth, not the boundary): no capabilities as root, the escapes that need them fail, the
seccomp filter refuses what could undo the sandbox, the launcher refuses to start a kernel that holds
capabilities, secrets and DICOM identifiers are absent, and model backends never run cells in a plain
user kernel. Needs bubblewrap (fails instead of skipping with CI=true or MEDAGENT_REQUIRE_SANDBOX=1).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_medagent.isolation import KernelIsolation, KernelLimits
from jupyter_medagent.isolation.launch import capabilities
from jupyter_medagent.kernel import KernelClientExecutor, new_kernel_manager

ROOT = Path(os.path.realpath(Path(__file__).resolve().parents[2]))
LIMITS = KernelLimits(memory_mb=8192, cpu_seconds=600)
AS_ROOT = os.geteuid() == 0



@pytest.fixture
def place(tmp_path):
    """A folder under the repository (not /tmp, which the sandbox hides): output/, data/ and outside/."""
    root = ROOT / ".test-sandbox" / tmp_path.name
    for name in ("output", "data", "outside"):
        (root / name).mkdir(parents=True)
    yield root
    shutil.rmtree(root, ignore_errors=True)
    if (ROOT / ".test-sandbox").exists() and not any((ROOT / ".test-sandbox").iterdir()):
        (ROOT / ".test-sandbox").rmdir()


def run_in_sandbox(place: Path, code: str, data: Path | None = None) -> dict:
    """Run ``code`` (which prints one JSON line) in a sandboxed kernel without the guard; returns that JSON."""
    isolation = KernelIsolation("sandbox", place / "output", str(data) if data else None, LIMITS)
    executor = KernelClientExecutor(cwd=place / "output", manager=new_kernel_manager(isolation), guard=None)
    try:
        result = executor.execute(code, timeout=120)
    finally:
        executor.close()
    assert result.ok, result.error
    text = "".join(o.get("text", "") for o in result.outputs if o.get("output_type") == "stream")
    return json.loads(text.strip().splitlines()[-1])


ESCAPES = r"""
import ctypes, errno, json, os
libc = ctypes.CDLL(None, use_errno=True)
def call(name, *args):
    ctypes.set_errno(0)
    result = getattr(libc, name)(*args)
    return [result, errno.errorcode.get(ctypes.get_errno(), "")]
status = dict(line.rstrip("\n").split(":\t", 1) for line in open("/proc/self/status") if ":\t" in line)
found = {k: status[k] for k in ("CapEff", "CapPrm", "CapAmb", "NoNewPrivs", "Seccomp")}
found["uid"] = os.getuid()
MS_REMOUNT, MS_BIND, MNT_DETACH = 32, 4096, 2
found["remount"] = call("mount", None, b"/", None, MS_REMOUNT | MS_BIND, None)
found["umount_tmp"] = call("umount2", b"/tmp", MNT_DETACH)
found["unshare_user"] = call("unshare", 0x10000000)
found["ptrace_traceme"] = call("ptrace", 0, 0, None, None)
try:
    open(OUTSIDE + "/escaped.txt", "w").write("out")
    found["write_outside"] = "written"
except OSError as exc:
    found["write_outside"] = errno.errorcode[exc.errno]
print(json.dumps(found))
"""


def test_sandboxed_kernel_has_no_capabilities_and_the_remount_escape_fails(bwrap, place):
    found = run_in_sandbox(place, f"OUTSIDE = {str(place / 'outside')!r}\n" + ESCAPES)
    assert int(found["CapEff"], 16) == 0 and int(found["CapPrm"], 16) == 0 and int(found["CapAmb"], 16) == 0
    assert found["NoNewPrivs"] == "1" and found["Seccomp"] == "2"
    assert found["uid"] == os.getuid()  # as root: uid 0 still, and powerless
    assert found["remount"] == [-1, "EPERM"] and found["umount_tmp"] == [-1, "EPERM"]
    assert found["unshare_user"] == [-1, "EPERM"] and found["ptrace_traceme"] == [-1, "EPERM"]
    assert found["write_outside"] == "EROFS" and not (place / "outside" / "escaped.txt").exists()


SECCOMP_ONLY = r"""
import ctypes, errno, json, os, subprocess, threading
from jupyter_medagent.isolation.launch import install_seccomp
assert install_seccomp() is None
libc = ctypes.CDLL(None, use_errno=True)
def call(name, *args):
    ctypes.set_errno(0)
    result = getattr(libc, name)(*args)
    return [result, errno.errorcode.get(ctypes.get_errno(), "")]
found = {
    "mount": call("mount", b"none", b"/nonexistent-medagent", b"tmpfs", 0, None),  # ENOENT without the filter
    "umount2": call("umount2", b"/nonexistent-medagent", 0),
    "unshare_uts": call("unshare", 0x04000000),  # as root this would succeed without the filter
    "ptrace_traceme": call("ptrace", 0, 0, None, None),
    "chroot": call("chroot", b"/nonexistent-medagent"),
    "bpf": call("syscall", 321, 0, None, 0),
    "perf_event_open": call("syscall", 298, None, 0, -1, -1, 0),
    "keyctl": call("syscall", 250, 0, 0, 0, 0, 0),
    "clone3": call("syscall", 435, None, 0),
}
try:
    subprocess.run(["/bin/true"])
    found["exec"] = "ran"
except OSError as exc:
    found["exec"] = errno.errorcode[exc.errno]
pid = os.fork()
if pid == 0:
    os._exit(7)
found["fork"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
box = []
thread = threading.Thread(target=lambda: box.append("ok")); thread.start(); thread.join()
found["thread"] = box
print(json.dumps(found))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.uname().machine not in ("x86_64", "aarch64"),
                    reason="the seccomp filter is built for x86_64 and aarch64 Linux")
def test_seccomp_filter_alone_refuses_mounts_namespaces_ptrace_and_programs():
    """The filter on its own (a plain child process, capabilities as they are): mount, unshare, ptrace,
    chroot, bpf, perf_event_open, keyrings and exec answer EPERM where the kernel would have done them or
    answered otherwise; clone3 answers ENOSYS; forks and threads still work."""
    result = subprocess.run([sys.executable, "-c", SECCOMP_ONLY], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    for name in ("mount", "umount2", "unshare_uts", "ptrace_traceme", "chroot", "bpf", "perf_event_open", "keyctl"):
        assert found[name] == [-1, "EPERM"], (name, found[name])
    assert found["clone3"] == [-1, "ENOSYS"] and found["exec"] == "EPERM"
    assert found["fork"] == 7 and found["thread"] == ["ok"]


@pytest.mark.skipif(not AS_ROOT, reason="needs capabilities to hold: run as root")
def test_launcher_refuses_to_start_a_kernel_while_holding_capabilities(tmp_path):
    assert capabilities()["CapEff"] != 0
    result = subprocess.run([sys.executable, "-m", "jupyter_medagent.isolation.launch", "--", "-f",
                             str(tmp_path / "kernel.json")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "refusing to start" in result.stderr and "CapEff 0000" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "kernel.json").exists()


@pytest.mark.skipif(not AS_ROOT, reason="needs capabilities to hold: run as root")
def test_an_executor_on_a_kernel_that_keeps_capabilities_says_so(tmp_path):
    """A sandbox spec whose bubblewrap kept capabilities (here: no bubblewrap at all) never starts a kernel:
    the executor reports the launcher's refusal."""
    from jupyter_medagent.isolation.sandbox import kernel_manager

    manager = kernel_manager(sandboxed=False, output_dir=tmp_path, data_dir=None, limits=LIMITS)
    manager.kernel_spec.argv.remove("--no-sandbox")
    with pytest.raises(Exception, match="the kernel did not start: refusing to start: the kernel process holds capabilities"):
        KernelClientExecutor(cwd=tmp_path, manager=manager, guard=None, startup_timeout=30)


SECRETS = r"""
import json, os
found = {"environ": sorted(k for k in os.environ if "KEY" in k or "TOKEN" in k),
         "canary_in_proc": [], "runtime_dir": os.path.exists(RUNTIME) and os.listdir(RUNTIME),
         "pids": []}
try:
    found["config"] = open(CONFIG).read()
except OSError as exc:
    found["config"] = type(exc).__name__
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    found["pids"].append(int(pid))
    for part in ("environ", "cmdline"):
        try:
            if CANARY.encode() in open(f"/proc/{pid}/{part}", "rb").read():
                found["canary_in_proc"].append(f"{pid}/{part}")
        except OSError:
            pass
hits = []
for top in ("/run", "/tmp", "/root", "/home", RUNTIME, os.path.dirname(RUNTIME)):
    for folder, _, names in os.walk(top):
        for name in names:
            try:
                if CANARY.encode() in open(os.path.join(folder, name), "rb").read():
                    hits.append(os.path.join(folder, name))
            except OSError:
                pass
found["canary_in_files"] = hits
print(json.dumps(found))
"""


def test_secrets_are_absent_from_the_environment_proc_and_every_folder_the_kernel_sees(bwrap, place, monkeypatch):
    """An API key and a server token in the host's environment, Jupyter's runtime folder moved to a place
    outside the known hidden names holding another kernel's connection file, and medagent's config file
    elsewhere too: none of them is anywhere the kernel can read (environment, /proc of every process it
    can see, files)."""
    canary = "medagent-canary-7f3a9c"
    runtime = place / "outside" / "jupyter-runtime"
    runtime.mkdir()
    (runtime / "kernel-other.json").write_text(json.dumps({"key": canary, "shell_port": 5555}))
    (runtime / "jpserver-1.json").write_text(json.dumps({"token": canary}))
    config = place / "outside" / "medagent.toml"
    config.write_text(f'[backends.x]\napi_key = "{canary}"\n')
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("MEDAGENT_CONFIG", str(config))
    monkeypatch.setenv("OPENAI_API_KEY", canary)
    monkeypatch.setenv("JUPYTER_TOKEN", canary)
    # Spelt in two pieces, so the cell's own source (in the kernel's history) does not hold the canary.
    code = f"CANARY, RUNTIME, CONFIG = {canary[:9]!r} + {canary[9:]!r}, {str(runtime)!r}, {str(config)!r}\n" + SECRETS
    found = run_in_sandbox(place, code)
    assert found["environ"] == [] and found["canary_in_proc"] == [] and found["canary_in_files"] == []
    assert found["runtime_dir"] in (False, []) and found["config"] in ("FileNotFoundError", "PermissionError", "")
    assert found["pids"] and max(found["pids"]) < 100  # its own pid namespace: the host's processes are not there


def _dicom_study(folder: Path) -> None:
    """A series of six slices and a SEG of it, under the patient's name, as a PACS export writes it."""
    import numpy as np

    from jupyter_medagent.imaging.dicom_export import write_seg, write_series
    from jupyter_medagent.imaging.volume import Volume

    image = (np.arange(16 * 16 * 6).reshape(16, 16, 6) % 97).astype(np.int16)
    label = np.zeros((16, 16, 6), np.uint8)
    label[4:10, 4:10, 1:5] = 1
    affine = np.diag([1.5, 1.5, 4.0, 1.0])
    files = write_series(Volume(image, affine), folder / "SERIES1", patient_name="DOE^JOHN", patient_id="PID-4711-X")
    write_seg(Volume(label, affine), files, folder / "SEG" / "seg.dcm", {1: "liver"})
    (folder / "notes.txt").write_text("not DICOM")


READ_DICOM = r"""
import json, os
from pathlib import Path
from jupyter_medagent.imaging.dicom import load_series_folder, load_seg
raw = b""
for folder, _, names in os.walk(DATA):
    for name in names:
        raw += open(os.path.join(folder, name), "rb").read()
image = load_series_folder(Path(DATA) / "SERIES1")
seg = load_seg(Path(DATA) / "SEG" / "seg.dcm", image)
print(json.dumps({"name": b"DOE^JOHN" in raw, "id": b"PID-4711-X" in raw, "shape": list(image.array.shape),
                  "labelled": int((seg.array > 0).sum()), "notes": open(DATA + "/notes.txt").read()}))
"""


def test_a_sandboxed_kernel_reads_dicom_de_identified_and_the_series_and_seg_still_load(bwrap, place, monkeypatch):
    cache = place / "outside" / "deid-cache"
    monkeypatch.setenv("MEDAGENT_DEID_CACHE", str(cache))
    _dicom_study(place / "data")
    found = run_in_sandbox(place, f"DATA = {str(place / 'data')!r}\n" + READ_DICOM, data=place / "data")
    assert found["name"] is False and found["id"] is False
    assert found["shape"] == [16, 16, 6] and found["labelled"] == 6 * 6 * 4 and found["notes"] == "not DICOM"
    # On the host: the originals are untouched and the mapping back to them is kept, out of the sandbox's view.
    first = sorted((place / "data" / "SERIES1").iterdir())[0]
    assert b"DOE^JOHN" in first.read_bytes()
    mapping = json.loads(next(cache.glob("*/mapping.json")).read_text())
    assert mapping[os.path.join("SERIES1", first.name)]["PatientName"] == "DOE^JOHN"


def test_the_de_identified_view_is_built_once_and_follows_changed_files(place, monkeypatch):
    from jupyter_medagent.isolation.deid import deidentified_view

    monkeypatch.setenv("MEDAGENT_DEID_CACHE", str(place / "outside" / "cache"))
    _dicom_study(place / "data")
    view = deidentified_view(place / "data")
    names = sorted(p.name for p in (place / "data" / "SERIES1").iterdir())
    copy = Path(view.root) / "SERIES1" / names[0]
    first = copy.stat().st_mtime_ns
    assert view.dicom_files == 7 and deidentified_view(place / "data").root == view.root
    assert copy.stat().st_mtime_ns == first  # not rewritten: the original did not change
    (place / "data" / "SERIES1" / names[3]).unlink()
    os.utime(place / "data" / "SERIES1" / names[0], ns=(first + 10**9, first + 10**9))
    view = deidentified_view(place / "data")
    assert view.dicom_files == 6 and not (Path(view.root) / "SERIES1" / names[3]).exists()
    assert copy.stat().st_mtime_ns != first
    nifti_only = place / "outside" / "nifti"
    nifti_only.mkdir()
    (nifti_only / "case.nii.gz").write_bytes(b"\x1f\x8b not really")
    assert deidentified_view(nifti_only) is None  # no DICOM: the folder is bound as it is


KERNELSPEC_PROBE = r"""
import json, os
from jupyter_medagent.isolation.kernelspec import in_sandbox_kernel
status = dict(line.rstrip("\n").split(":\t", 1) for line in open("/proc/self/status") if ":\t" in line)
open("medagent_output/written-by-the-kernel.txt", "w").write("ok")
try:
    open(OUTSIDE + "/escaped.txt", "w").write("out")
    outside = "written"
except OSError as exc:
    outside = type(exc).__name__
print(json.dumps({"CapEff": status["CapEff"], "sandbox": in_sandbox_kernel(), "cwd": os.getcwd(),
                  "outside": outside, "keys": [k for k in os.environ if "KEY" in k]}))
"""


def test_the_sandbox_kernelspec_runs_a_notebook_kernel_in_the_sandbox(bwrap, place, monkeypatch):
    """`medagent kernelspec install` as Jupyter uses it: a kernel started from the spec (TCP ports, as a
    Jupyter server chooses them) answers through the relay, holds no capabilities, knows it is the sandbox
    kernel, works in the notebook's folder, writes into its medagent_output/ and nowhere else, and has no API key."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    from jupyter_medagent.cli import main as medagent
    from jupyter_medagent.isolation.kernelspec import DISPLAY_NAME, SPEC_NAME

    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-in-the-kernel")
    prefix = place / "outside" / "prefix"
    monkeypatch.setattr(sys, "prefix", str(prefix))
    assert medagent(["kernelspec", "install", "--sys-prefix"]) == 0
    specs = KernelSpecManager(kernel_dirs=[str(prefix / "share" / "jupyter" / "kernels")])
    assert specs.get_kernel_spec(SPEC_NAME).display_name == DISPLAY_NAME
    notebook_folder = place / "output"
    manager = KernelManager(kernel_name=SPEC_NAME, kernel_spec_manager=specs)
    manager.start_kernel(cwd=str(notebook_folder))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        outputs = []
        reply = client.execute_interactive(f"OUTSIDE = {str(place / 'outside')!r}\n" + KERNELSPEC_PROBE, timeout=60,
                                           output_hook=lambda m: outputs.append(m))
        assert reply["content"]["status"] == "ok"
        # An interrupt reaches a running cell through the relay, and the kernel goes on afterwards.
        running = client.execute("import time\nfor _ in range(600): time.sleep(0.1)")
        while client.get_iopub_msg(timeout=30)["content"].get("execution_state") != "busy":
            pass
        manager.interrupt_kernel()
        interrupted = client.get_shell_msg(timeout=30)
        assert interrupted["parent_header"]["msg_id"] == running
        assert interrupted["content"]["status"] == "error" and interrupted["content"]["ename"] == "KeyboardInterrupt"
        assert client.execute_interactive("1 + 1", timeout=30)["content"]["status"] == "ok"
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    text = "".join(m["content"].get("text", "") for m in outputs if m["msg_type"] == "stream")
    found = json.loads(text.strip().splitlines()[-1])
    assert int(found["CapEff"], 16) == 0 and found["sandbox"] is True and found["keys"] == []
    written = notebook_folder / "medagent_output" / "written-by-the-kernel.txt"
    assert found["cwd"] == str(notebook_folder) and written.read_text() == "ok"
    assert found["outside"] == "OSError"  # EROFS
    assert not (place / "outside" / "escaped.txt").exists()


UNPRIVILEGED_PROBE = r"""
import ctypes, json, os, subprocess, sys, tempfile
from jupyter_medagent.isolation.sandbox import bwrap_argv, kernel_environment, sandbox_problem
assert sandbox_problem() is None, sandbox_problem()
out, runtime = tempfile.mkdtemp(), tempfile.mkdtemp()
env = {**kernel_environment(home="/tmp/home"), "PYTHONPATH": os.environ["PYTHONPATH"]}
inside = ("import ctypes, json, os; from jupyter_medagent.isolation import launch; "
          "refused = launch.capability_problem(); filtered = launch.install_seccomp(); "
          "libc = ctypes.CDLL(None, use_errno=True); result = libc.mount(None, b'/', None, 32 | 4096, None); "
          "print(json.dumps({'uid': os.getuid(), 'CapEff': launch.capabilities()['CapEff'], 'refused': refused, "
          "'filter': filtered, 'remount': [result, ctypes.get_errno()]}))")
done = subprocess.run(bwrap_argv(output_dir=out, data_dir=None, runtime_dir=runtime, environment=env)
                      + [sys.executable, "-c", inside], capture_output=True, text=True, timeout=60)
print(done.stdout.strip().splitlines()[-1] if done.returncode == 0 else json.dumps({"error": done.stderr}))
"""


@pytest.mark.skipif(not AS_ROOT or not shutil.which("setpriv") or not Path("/usr/bin/python3").exists(),
                    reason="needs root (to become another user), setpriv and a system Python")
def test_the_sandbox_holds_for_an_unprivileged_user_too(bwrap):
    """As nobody (uid 65534; bubblewrap then makes a user namespace): no capabilities inside, the launcher's
    check passes, the filter installs, the remount fails. The system Python runs this checkout's code with
    the virtualenv's packages, the virtualenv's own interpreter living under root's home."""
    system = subprocess.run(["/usr/bin/python3", "-c", "import sys; print(sys.version_info[:2])"],
                            capture_output=True, text=True).stdout.strip()
    if system != str(sys.version_info[:2]):
        pytest.skip(f"the system Python {system} cannot use this virtualenv's packages")
    site = next(p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix))
    result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env", "-i",
                             "HOME=/nonexistent", "PATH=/usr/bin:/bin", f"PYTHONPATH={ROOT}:{site}",
                             "/usr/bin/python3", "-c", UNPRIVILEGED_PROBE],
                            capture_output=True, text=True, timeout=120, cwd="/")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found == {"uid": 65534, "CapEff": 0, "refused": None, "filter": None, "remount": [-1, 1]}, found
