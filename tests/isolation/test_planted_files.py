"""What a sandboxed kernel can write never runs or is read on the host, and what it can read is
de-identified: modules planted in a writable folder are not imported at the next kernel start (on the host
or inside the sandbox), the sandbox kernelspec writes only ``medagent_output/`` beside the notebook, a
folder holding Python the host runs is never writable, the launcher's refusal is not read through a link
the kernel made, and the de-identified view covers raw DICOM without preamble or extension and DICOM
behind symlinks, for the kernels medagent starts and for the sandbox kernelspec. Real kernels, as root.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from jupyter_medagent.contracts.errors import ConfigError
from jupyter_medagent.isolation import KernelIsolation, KernelLimits
from jupyter_medagent.kernel import KernelClientExecutor, new_kernel_executor, new_kernel_manager

ROOT = Path(os.path.realpath(Path(__file__).resolve().parents[2]))
LIMITS = KernelLimits(memory_mb=8192, cpu_seconds=600)
# Planted as jupyter_medagent/__init__.py and ipykernel_launcher.py: says it ran, wherever it runs.
PLANT = "import os\nopen(os.path.join(os.path.dirname(os.path.abspath(__file__)), {mark!r}), 'w').write('ran')\n"



@pytest.fixture
def place(tmp_path, monkeypatch):
    """A folder under the repository (not /tmp, which the sandbox hides), with a de-identification cache of its own."""
    root = ROOT / ".test-sandbox" / tmp_path.name
    for name in ("output", "data", "outside"):
        (root / name).mkdir(parents=True)
    monkeypatch.setenv("MEDAGENT_DEID_CACHE", str(root / "outside" / "deid-cache"))
    yield root
    shutil.rmtree(root, ignore_errors=True)
    if (ROOT / ".test-sandbox").exists() and not any((ROOT / ".test-sandbox").iterdir()):
        (ROOT / ".test-sandbox").rmdir()


def plant(folder: Path) -> list[Path]:
    """A package and a launcher module that Python would import from ``folder`` were it first on sys.path;
    returns the files they write when they run."""
    (folder / "jupyter_medagent").mkdir()
    (folder / "jupyter_medagent" / "__init__.py").write_text(PLANT.format(mark="PACKAGE-RAN"))
    (folder / "ipykernel_launcher.py").write_text(PLANT.format(mark="LAUNCHER-RAN"))
    return [folder / "jupyter_medagent" / "PACKAGE-RAN", folder / "LAUNCHER-RAN"]


def run_cell(executor: KernelClientExecutor, code: str) -> dict:
    result = executor.execute(code, timeout=120)
    assert result.ok, result.error
    text = "".join(o.get("text", "") for o in result.outputs if o.get("output_type") == "stream")
    return json.loads(text.strip().splitlines()[-1])


def test_modules_planted_in_the_output_folder_never_run_when_a_sandboxed_kernel_starts(bwrap, place):
    """Finding 5: a cell plants ``jupyter_medagent/`` in the output folder, the kernel's working directory; the
    next kernel (a restart, the verification re-run) must import the real package, not the planted one."""
    marks = plant(place / "output")
    (place / "output" / "beside.py").write_text("VALUE = 7\n")  # a module of the run's own still imports
    executor = new_kernel_executor(KernelIsolation("sandbox", place / "output", None, LIMITS))
    try:
        found = run_cell(executor, "import beside, json, jupyter_medagent, os\n"
                                   "print(json.dumps({'package': jupyter_medagent.__file__, 'cwd': os.getcwd(), "
                                   "'beside': beside.VALUE}))")
        executor.restart()
        assert run_cell(executor, "print(1 + 1)") == 2
    finally:
        executor.close()
    assert [m for m in marks if m.exists()] == []
    assert found["cwd"] == str(place / "output") and found["package"] == str(ROOT / "jupyter_medagent" / "__init__.py")
    assert found["beside"] == 7


def start_sandbox_kernelspec(place: Path, notebook_folder: Path):
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    from jupyter_medagent.isolation.kernelspec import SPEC_NAME, install

    prefix = place / "outside" / "prefix"
    install(prefix=str(prefix))
    specs = KernelSpecManager(kernel_dirs=[str(prefix / "share" / "jupyter" / "kernels")])
    manager = KernelManager(kernel_name=SPEC_NAME, kernel_spec_manager=specs)
    manager.start_kernel(cwd=str(notebook_folder))
    client = manager.client()
    client.start_channels()
    return manager, client


def kernelspec_cell(client, code: str) -> dict:
    outputs = []
    reply = client.execute_interactive(code, timeout=120, output_hook=outputs.append)
    assert reply["content"]["status"] == "ok", reply["content"]
    text = "".join(m["content"].get("text", "") for m in outputs if m["msg_type"] == "stream")
    return json.loads(text.strip().splitlines()[-1])


WRITES = r"""
import json, os
def attempt(path):
    try:
        open(path, "w").write("from the kernel")
        return "written"
    except OSError as exc:
        return type(exc).__name__
print(json.dumps({"cwd": os.getcwd(), "output": os.environ.get("MEDAGENT_OUTPUT_DIR"),
                  "notebook_folder": attempt("planted.py"), "venv": attempt(SITE + "/zz_evil.pth"),
                  "medagent_output": attempt("medagent_output/figure.txt")}))
"""


def test_the_sandbox_kernelspec_host_process_ignores_planted_modules_and_writes_only_medagent_output(bwrap, place):
    """Findings 2, 6, 7: a notebook at a project root holding its virtualenv. Jupyter starts the kernelspec's
    host process in the notebook's folder, where modules are planted: they do not run; the kernel works in
    the notebook's folder, cannot write it nor the virtualenv's site-packages, and writes medagent_output/."""
    project = place / "project"
    site = project / ".venv" / "lib" / "python3" / "site-packages"
    site.mkdir(parents=True)
    marks = plant(project)
    manager, client = start_sandbox_kernelspec(place, project)
    try:
        client.wait_for_ready(timeout=90)
        found = kernelspec_cell(client, f"SITE = {str(site)!r}\n" + WRITES)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    assert [m for m in marks if m.exists()] == []
    assert found["cwd"] == str(project) and found["output"] == str(project / "medagent_output")
    assert found["notebook_folder"] == "OSError" and found["venv"] == "OSError"  # EROFS
    assert found["medagent_output"] == "written"
    assert (project / "medagent_output" / "figure.txt").read_text() == "from the kernel"
    assert not (project / "planted.py").exists() and not (site / "zz_evil.pth").exists()


def test_a_folder_holding_python_the_host_runs_is_never_writable(place):
    from jupyter_medagent.isolation.kernelspec import output_folder
    from jupyter_medagent.isolation.sandbox import kernel_manager, writable_folder_problem

    assert "holds or lies in Python code" in writable_folder_problem(sys.prefix)
    assert "holds or lies in Python code" in writable_folder_problem(os.path.dirname(sys.prefix))  # the project root
    assert "holds or lies in Python code" in writable_folder_problem(str(ROOT / "jupyter_medagent" / "isolation"))
    assert writable_folder_problem(str(place / "output")) is None
    with pytest.raises(ConfigError, match="holds or lies in Python code"):
        kernel_manager(sandboxed=True, output_dir=os.path.dirname(sys.prefix), data_dir=None, limits=LIMITS)
    (place / "output" / "medagent_output").symlink_to(place / "outside")
    with pytest.raises(ConfigError, match="not a link"):
        output_folder(str(place / "output"))


def test_the_launchers_refusal_is_not_read_through_a_link_the_kernel_made(place):
    """Finding 5: a launcher that links the refusal note next to its connection file to a root-only file and
    exits; the executor's error must not carry that file's content."""
    from jupyter_medagent.isolation.sandbox import kernel_manager

    secret = place / "outside" / "secret.txt"
    secret.write_text("CANARY-ROOTFILE-test")
    manager = kernel_manager(sandboxed=False, output_dir=place / "output", data_dir=None, limits=LIMITS)
    link = ("import os, sys; folder = os.path.dirname(sys.argv[-1]); "
            f"os.symlink({str(secret)!r}, os.path.join(folder, 'launch-refused.txt')); "
            "print('medagent kernel: refusing to start: planted', file=sys.stderr); sys.exit(2)")
    manager.kernel_spec.argv = [sys.executable, "-c", link, "{connection_file}"]
    with pytest.raises(Exception) as raised:
        KernelClientExecutor(cwd=place / "output", manager=manager, guard=None, startup_timeout=30)
    assert "CANARY-ROOTFILE" not in str(raised.value)
    assert "the kernel did not start: refusing to start: planted" in str(raised.value)
    assert secret.read_text() == "CANARY-ROOTFILE-test"


def raw_pacs(data: Path, elsewhere: Path) -> None:
    """A normal file, a raw data set without preamble or extension, and a study reached through a symlinked
    folder and a symlinked file, each under its own patient's name."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ImplicitVRLittleEndian, generate_uid

    def make(name):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
        ds.PatientName, ds.PatientID, ds.Modality = name, name.replace("^", "-") + "-ID", "MR"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        return ds

    make("CANARY^ONE").save_as(data / "a.dcm", enforce_file_format=True)
    raw = make("CANARY^TWO")
    del raw.file_meta
    raw.save_as(data / "IM0002", enforce_file_format=False, implicit_vr=True, little_endian=True)
    (elsewhere / "study2").mkdir()
    make("CANARY^THREE").save_as(elsewhere / "study2" / "b.dcm", enforce_file_format=True)
    make("CANARY^FOUR").save_as(elsewhere / "c.dcm", enforce_file_format=True)
    (data / "linked").symlink_to(elsewhere / "study2")
    (data / "c-link.dcm").symlink_to(elsewhere / "c.dcm")
    (data / "notes.txt").write_text("not DICOM")


READ_ALL = r"""
import json, os
from pathlib import Path
import pydicom
raw, names = b"", {}
for folder, _, files in os.walk(DATA, followlinks=True):
    for name in files:
        path = os.path.join(folder, name)
        raw += open(path, "rb").read()
        if name != "notes.txt":
            names[os.path.relpath(path, DATA)] = str(pydicom.dcmread(path, force=True).PatientName)
print(json.dumps({"canary": b"CANARY" in raw, "names": names, "notes": open(DATA + "/notes.txt").read()}))
"""


def test_a_sandboxed_kernel_sees_raw_and_linked_dicom_de_identified(bwrap, place):
    """Finding 1: raw DICOM without preamble or extension, and DICOM behind a symlinked folder and file."""
    raw_pacs(place / "data", place / "outside")
    isolation = KernelIsolation("sandbox", place / "output", str(place / "data"), LIMITS)
    executor = KernelClientExecutor(cwd=place / "output", manager=new_kernel_manager(isolation), guard=None)
    try:
        found = run_cell(executor, f"DATA = {str(place / 'data')!r}\n" + READ_ALL)
    finally:
        executor.close()
    assert found["canary"] is False and found["notes"] == "not DICOM"
    assert sorted(found["names"]) == ["IM0002", "a.dcm", "c-link.dcm", os.path.join("linked", "b.dcm")]
    assert not any("CANARY" in name for name in found["names"].values())


def test_the_sandbox_kernelspec_shows_its_notebook_folders_dicom_de_identified(bwrap, place):
    """Finding 10: a notebook folder holding DICOM, opened on "Python 3 (medagent sandbox)"."""
    project = place / "project"
    project.mkdir()
    raw_pacs(project, place / "outside")
    manager, client = start_sandbox_kernelspec(place, project)
    try:
        client.wait_for_ready(timeout=90)
        found = kernelspec_cell(client, f"DATA = {str(project)!r}\n" + READ_ALL)
        found_out = kernelspec_cell(client, "import json; open('medagent_output/x.txt', 'w').write('ok'); "
                                            "print(json.dumps('saved'))")
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    assert found["canary"] is False and found["notes"] == "not DICOM"
    assert not any("CANARY" in name for name in found["names"].values()) and "IM0002" in found["names"]
    assert found_out == "saved" and (project / "medagent_output" / "x.txt").read_text() == "ok"
    assert b"CANARY^TWO" in (project / "IM0002").read_bytes()  # the original is untouched
