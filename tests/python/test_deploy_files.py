"""Deployment examples (examples/production): validated as far as a machine without a container
engine or a cluster allows.

* every YAML file parses and passes yamllint; the Kubernetes manifests pass the offline OpenAPI
  schemas of kubernetes-validate (strict: unknown fields are errors) for the oldest and newest
  Kubernetes versions we name; docker-compose.yml passes the compose-spec schema vendored in
  check-jsonschema; a deliberate typo is rejected by both (the checks are not vacuous);
* the Dockerfiles are checked structurally (hadolint is not packaged): base images, the project's
  own scripts, non-root user, HEALTHCHECK, EXPOSE, exec-form ENTRYPOINT, .dockerignore;
* ports, probe paths, flags and selectors agree across Dockerfile, compose, Prometheus and
  Kubernetes files and with the `kernelpytorch serve` contract (flags from `serve --help` when the
  CLI is built);
* with a built CLI, the exact command lines of the Dockerfile, the Kubernetes Deployment, the
  SageMaker entry script and the Vertex AI image are started on loopback against a tiny fixture
  model, and their routes (/health, /ready, /metrics, /ping, /invocations, AIP_* routes) are
  exercised end to end.

The validators come from PyPI: pip install yamllint kubernetes-validate check-jsonschema.
"""
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROD = ROOT / "examples" / "production"
K8S = PROD / "k8s"
CLI = os.environ.get("KPT_CLI", str(ROOT / "build" / "src" / "cli" / "kernelpytorch"))
YAML_FILES = sorted(p for p in PROD.rglob("*") if p.suffix in (".yml", ".yaml"))
DOCKERFILES = [PROD / "Dockerfile.production", PROD / "Dockerfile.development",
               PROD / "sagemaker" / "Dockerfile", PROD / "vertex" / "Dockerfile"]
# Oldest still-common and newest Kubernetes releases whose schemas kubernetes-validate ships.
K8S_VERSIONS = ["1.29.0", "1.37.0"]
SERVE_PORT = 8000    # the port of the openai contract in the image, compose and Kubernetes
CLOUD_PORT = 8080    # SageMaker's fixed port and Vertex AI's default AIP_HTTP_PORT
IMAGE_UID = 10001    # the non-root user of Dockerfile.production
INSTALL_HINT = "pip install yamllint kubernetes-validate check-jsonschema (scripts/setup.sh installs them)"


def need(module):
    """The module, or a skip naming how to install the validators."""
    return pytest.importorskip(module, reason=f"{module} is not installed: {INSTALL_HINT}")


def load_yaml(path):
    yaml = need("yaml")
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def k8s_docs():
    docs = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in load_yaml(path):
            docs[doc["kind"]] = doc
    return docs


# ---- Dockerfile parsing -------------------------------------------------------------------------

def dockerfile_instructions(path):
    """[(INSTRUCTION, arguments)] with continuation lines joined and comments dropped."""
    out, pending = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#"):  # comments, also those inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    assert not pending, f"{path}: a continued instruction never ends"
    return out


def stages(path):
    """[(FROM image with ARG defaults substituted, [instructions of that stage])]."""
    args, result = {}, []
    for instr, rest in dockerfile_instructions(path):
        if instr == "ARG" and "=" in rest and not result:
            k, v = rest.split("=", 1)
            args[k] = v.strip('"')
        if instr == "FROM":
            image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), rest.split()[0])
            result.append((image, []))
        elif result:
            result[-1][1].append((instr, rest))
    return result


def exec_form(rest):
    """The JSON array of an exec-form instruction (ENTRYPOINT/CMD/HEALTHCHECK CMD)."""
    value = json.loads(rest)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), rest
    return value


def last(instrs, name):
    found = [rest for instr, rest in instrs if instr == name]
    return found[-1] if found else None


def flag_value(argv, flag):
    return argv[argv.index(flag) + 1] if flag in argv else None


# ---- the CLI -----------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def serve_help():
    """`kernelpytorch serve --help`, or None when the CLI or its serve command is not built (a CLI
    without serve prints its top-level help for `serve --help`, hence the --contract check)."""
    if not Path(CLI).exists():
        return None
    p = subprocess.run([CLI, "serve", "--help"], capture_output=True, text=True, timeout=60)
    text = p.stdout + p.stderr
    return text if p.returncode == 0 and "--contract" in text else None


def serve_flags():
    text = serve_help()
    if text is None:
        pytest.skip(f"`{CLI} serve --help` is not available yet (build the CLI with serve: scripts/build.sh)")
    return set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text))


def flags_in(argv):
    return [a for a in argv if a.startswith("--")]


# ---- YAML: parse, lint, schemas ----------------------------------------------------------------

@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(PROD)))
def test_yaml_parses(path):
    docs = load_yaml(path)
    assert docs and all(isinstance(d, dict) for d in docs)


def test_yamllint_passes():
    need("yamllint")
    p = subprocess.run([sys.executable, "-m", "yamllint", "-s", "-c", str(PROD / ".yamllint.yaml"), str(PROD)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_k8s_manifests_pass_strict_schema(version):
    kv = need("kubernetes_validate")
    checked = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in load_yaml(path):
            if doc["kind"] == "Kustomization":  # kustomize's own file, not an API object
                assert set(doc["resources"]) <= {p.name for p in K8S.glob("*.yaml")}
                continue
            kv.validate(doc, version, strict=True)
            checked.append(doc["kind"])
    assert {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget",
            "HorizontalPodAutoscaler", "PersistentVolumeClaim"} <= set(checked)


def test_k8s_schema_check_rejects_mistakes():
    kv = need("kubernetes_validate")
    dep = k8s_docs()["Deployment"]
    typo = json.loads(json.dumps(dep))
    c = typo["spec"]["template"]["spec"]["containers"][0]
    c["readinesProbe"] = c.pop("readinessProbe")
    with pytest.raises(kv.ValidationError):
        kv.validate(typo, K8S_VERSIONS[-1], strict=True)
    wrong_type = json.loads(json.dumps(dep))
    wrong_type["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8000"
    with pytest.raises(kv.ValidationError):
        kv.validate(wrong_type, K8S_VERSIONS[-1], strict=True)


def compose_validator():
    need("check_jsonschema")
    jsonschema = need("jsonschema")
    import check_jsonschema
    schema_path = Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor" / "compose-spec.json"
    if not schema_path.exists():
        pytest.skip(f"this check-jsonschema has no vendored compose-spec schema ({schema_path})")
    schema = json.loads(schema_path.read_text())
    return jsonschema.validators.validator_for(schema)(schema)


def test_compose_passes_compose_spec_schema():
    validator = compose_validator()
    compose = load_yaml(PROD / "docker-compose.yml")[0]
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose)]
    assert not errors, errors
    bad = json.loads(json.dumps(compose))
    bad["services"]["server"]["stop_grace_periodd"] = "60s"
    assert list(validator.iter_errors(bad)), "the compose schema accepted an unknown key"


# ---- Dockerfiles -------------------------------------------------------------------------------

def test_production_dockerfile_stages():
    (builder, b_instrs), (runtime, r_instrs) = stages(PROD / "Dockerfile.production")
    # The builder compiles with the toolkit; the runtime has only the libraries of the same release.
    m_b = re.fullmatch(r"nvidia/cuda:(13\.0\.\d+)-devel-(ubuntu24\.04)", builder)
    m_r = re.fullmatch(r"nvidia/cuda:(13\.0\.\d+)-runtime-(ubuntu24\.04)", runtime)
    assert m_b and m_r and m_b.groups() == m_r.groups(), (builder, runtime)
    runs = " ".join(rest for instr, rest in b_instrs if instr == "RUN")
    for step in ("bash scripts/setup.sh", "bash scripts/build.sh", "pip install"):
        assert step in runs, f"the builder does not run `{step}`"
    assert re.search(r"pip install [^&]*\.\s*(\\|&&|$)", runs), "the builder does not `pip install .` the tree"
    assert any(i == "COPY" and "--from=builder" in r for i, r in r_instrs)


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(PROD)))
def test_dockerfile_scripts_and_copies_exist(path):
    """Every project script a RUN calls and every COPY source from the build context exists."""
    context = ROOT if path.parent == PROD else path.parent  # the derived images build in their folder
    for instr, rest in dockerfile_instructions(path):
        if instr == "RUN":
            for script in re.findall(r"(?:bash|sh)\s+(\S+\.sh)", rest):
                if not script.startswith("/tmp/"):
                    assert (ROOT / script).is_file(), f"{path.name}: RUN calls {script}, which is not in the repository"
        if instr == "COPY" and "--from=" not in rest:
            *sources, _dest = [w for w in rest.split() if not w.startswith("--")]
            for src in sources:
                assert (context / src).exists(), f"{path.name}: COPY {src} is not in the build context {context}"
    for script in re.findall(r"/tmp/(\S+\.sh)", path.read_text()):  # copied in as /tmp/x.sh
        assert (ROOT / "scripts" / script).is_file()


def test_production_runtime_is_non_root_with_healthcheck():
    _, instrs = stages(PROD / "Dockerfile.production")[-1]
    user = last(instrs, "USER")
    assert user and user.split(":")[0] not in ("0", "root"), f"runtime USER is {user!r}"
    assert int(user.split(":")[0]) == IMAGE_UID
    assert last(instrs, "EXPOSE") == str(SERVE_PORT)
    hc = last(instrs, "HEALTHCHECK")
    assert hc and "CMD" in hc, "no HEALTHCHECK"
    env = " ".join(rest for instr, rest in instrs if instr == "ENV")
    url = re.search(r"KPT_HEALTHCHECK_URL=(\S+)", env).group(1)
    assert url == f"http://127.0.0.1:{SERVE_PORT}/health"
    assert "KPT_HEALTHCHECK_URL" in hc
    entry, cmd = exec_form(last(instrs, "ENTRYPOINT")), exec_form(last(instrs, "CMD"))
    assert entry[:2] == ["kernelpytorch", "serve"] and flag_value(entry, "--host") == "0.0.0.0"
    assert cmd[0] == "/models/model" and flag_value(cmd, "--port") == str(SERVE_PORT)


def test_healthcheck_command_fails_when_nothing_listens():
    """The HEALTHCHECK's own command exits non-zero against a closed port (and 0 against a live
    server: test_production_entrypoint_serves)."""
    _, instrs = stages(PROD / "Dockerfile.production")[-1]
    argv = exec_form(last(instrs, "HEALTHCHECK").split("CMD", 1)[1].strip())
    argv[0] = sys.executable
    env = dict(os.environ, KPT_HEALTHCHECK_URL=f"http://127.0.0.1:{free_port()}/health")
    assert subprocess.run(argv, env=env, capture_output=True, timeout=30).returncode != 0


def test_shell_passes_shellcheck(tmp_path):
    """The shell scripts and every Dockerfile RUN body (as hadolint would hand them to shellcheck)."""
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    scripts = [PROD / "sagemaker" / "serve", ROOT / "scripts" / "serve" / "validate_deploy.sh"]
    for path in DOCKERFILES:
        for i, (instr, rest) in enumerate(dockerfile_instructions(path)):
            if instr == "RUN" and not rest.startswith("["):
                body = tmp_path / f"{path.parent.name}_{path.name}_{i}.sh"
                body.write_text("#!/bin/bash\n" + re.sub(r"^(--\S+\s+)+", "", rest) + "\n")
                scripts.append(body)
    p = subprocess.run(["shellcheck", *map(str, scripts)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr


def test_runtime_package_step_runs_here(tmp_path):
    """The builder's `ldd` + `dpkg -S` step, exactly as written in Dockerfile.production, run on
    this machine's installed package (Debian here, Ubuntu in the image; both dpkg-based)."""
    import importlib.util
    spec = importlib.util.find_spec("kernel_pytorch")
    if spec is None or spec.origin is None or shutil.which("dpkg") is None:
        pytest.skip("needs dpkg and the installed package (pip install .)")
    pkg = Path(spec.origin).parent
    if not (pkg / "bin" / "kernelpytorch").exists() or not list(pkg.glob("_core*.so")):
        pytest.skip(f"{pkg} is not an installed package with its binary (pip install .)")
    (_, builder), _ = stages(PROD / "Dockerfile.production")
    step = [rest for instr, rest in builder if instr == "RUN" and "runtime-packages.txt" in rest]
    assert len(step) == 1
    out = tmp_path / "runtime-packages.txt"
    cmd = step[0].replace("/opt/kpt/lib/python3*/site-packages/kernel_pytorch", str(pkg))
    cmd = cmd.replace("/opt/kpt/runtime-packages.txt", str(out))
    p = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    packages = out.read_text().split()
    assert "libgomp1" in packages and any(n.startswith("libdnnl") for n in packages), packages
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9.+-]+", n) for n in packages), packages


def dockerignore_excludes(patterns, rel):
    """Whether a path is excluded (Docker's rules: patterns from the context root, last match wins,
    `!` re-includes, a matched folder excludes everything below it)."""
    excluded = False
    for pat in patterns:
        negate = pat.startswith("!")
        pat = pat.lstrip("!").strip("/")
        rx = re.escape(pat).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        rx = rx.replace(r"\?", "[^/]")
        if re.fullmatch(rf"{rx}(?:/.*)?", rel):
            excluded = not negate
    return excluded


@pytest.mark.parametrize("name", ["Dockerfile.production", "Dockerfile.development"])
def test_dockerignore_keeps_every_tracked_file(name):
    ignore = PROD / f"{name}.dockerignore"
    patterns = [ln.strip() for ln in ignore.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    p = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip("not a git checkout")
    tracked = p.stdout.split()
    dropped = [f for f in tracked if dockerignore_excludes(patterns, f)]
    assert not dropped, f"{ignore.name} leaves tracked files out of the build context: {dropped[:10]}"
    for heavy in ("models/smollm2-135m/model.safetensors", "build/src/cli/kernelpytorch", ".git/HEAD"):
        assert dockerignore_excludes(patterns, heavy), heavy


def test_dockerfile_commands_use_real_serve_flags():
    flags = serve_flags()
    for path in DOCKERFILES:
        instrs = dockerfile_instructions(path)
        argv = []
        for name in ("ENTRYPOINT", "CMD"):
            rest = last(instrs, name)
            if rest and rest.startswith("["):
                argv += exec_form(rest)
        if "kernelpytorch" in argv:
            unknown = set(flags_in(argv)) - flags
            assert not unknown, f"{path.name}: {sorted(unknown)} not in `kernelpytorch serve --help`"
    script_flags = re.findall(r"--[a-z][a-z0-9-]*", (PROD / "sagemaker" / "serve").read_text())
    assert set(script_flags) <= flags


# ---- consistency of ports, probes and selectors ------------------------------------------------

def deployment_container():
    return k8s_docs()["Deployment"]["spec"]["template"]["spec"]["containers"][0]


def k8s_args():
    """The Deployment's args with $(VAR) expanded from the ConfigMap, as the kubelet does."""
    data = k8s_docs()["ConfigMap"]["data"]
    out = []
    for a in deployment_container()["args"]:
        for var in re.findall(r"\$\((\w+)\)", a):
            assert var in data, f"args use $({var}), which the ConfigMap does not define"
        out.append(re.sub(r"\$\((\w+)\)", lambda m: data[m.group(1)], a))
    return out


def test_k8s_probes_match_the_contract():
    c = deployment_container()
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": SERVE_PORT}
    assert flag_value(k8s_args(), "--port") == str(SERVE_PORT)
    for probe, path in (("livenessProbe", "/health"), ("readinessProbe", "/ready"), ("startupProbe", "/ready")):
        get = c[probe]["httpGet"]
        assert get["path"] == path, f"{probe} checks {get['path']}, the contract says {path}"
        assert ports.get(get["port"], get["port"]) == SERVE_PORT
    # The startup probe must allow a slow model load (minutes), the others react within seconds.
    s = c["startupProbe"]
    assert s["periodSeconds"] * s["failureThreshold"] >= 300
    ann = k8s_docs()["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/path"] == "/metrics" and ann["prometheus.io/port"] == str(SERVE_PORT)


def test_k8s_gpu_security_and_shutdown():
    dep = k8s_docs()["Deployment"]
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1 and c["resources"]["requests"]["nvidia.com/gpu"] == 1
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == IMAGE_UID
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert "/tmp" in mounts, "a read-only root needs a writable /tmp"
    assert mounts["/models"]["readOnly"] is True and k8s_args()[0] == "/models/model"
    # SIGTERM drains; the grace period must outlast the longest request (and the preStop sleep).
    timeout = float(flag_value(k8s_args(), "--request-timeout"))
    assert pod["terminationGracePeriodSeconds"] > timeout + 5


def test_k8s_args_are_real_serve_flags():
    unknown = set(flags_in(k8s_args())) - serve_flags()
    assert not unknown, f"deployment.yaml passes {sorted(unknown)}, not in `kernelpytorch serve --help`"


def test_k8s_objects_select_the_deployment():
    docs = k8s_docs()
    dep = docs["Deployment"]
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert docs["Service"]["spec"]["selector"].items() <= pod_labels.items()
    assert docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    port_names = {p["name"] for p in deployment_container()["ports"]}
    assert all(p["targetPort"] in port_names for p in docs["Service"]["spec"]["ports"])
    target = docs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", dep["metadata"]["name"])
    claim = [v for v in dep["spec"]["template"]["spec"]["volumes"] if "persistentVolumeClaim" in v][0]
    assert claim["persistentVolumeClaim"]["claimName"] == docs["PersistentVolumeClaim"]["metadata"]["name"]
    env_from = deployment_container()["envFrom"][0]["configMapRef"]["name"]
    assert env_from == docs["ConfigMap"]["metadata"]["name"]


def test_compose_ports_gpu_and_prometheus_agree():
    compose = load_yaml(PROD / "docker-compose.yml")[0]
    server = compose["services"]["server"]
    assert (PROD / server["build"]["context"] / server["build"]["dockerfile"]).resolve() == \
        (PROD / "Dockerfile.production").resolve()
    port = flag_value(server["command"], "--port")
    assert port == str(SERVE_PORT) and server["command"][0] == "/models/model"
    assert any(str(p).endswith(f":{port}") for p in server["ports"])
    devices = server["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"] and devices[0]["driver"] == "nvidia"
    assert [v["target"] for v in server["volumes"]] == ["/models/model"] and server["volumes"][0]["read_only"]
    prom = compose["services"]["prometheus"]
    mount = [v for v in prom["volumes"] if v.endswith("/etc/prometheus/prometheus.yml:ro")][0]
    assert (PROD / mount.split(":")[0]).resolve() == (PROD / "prometheus.yml").resolve()
    job = load_yaml(PROD / "prometheus.yml")[0]["scrape_configs"][0]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == [f"server:{port}"]


def test_compose_command_uses_real_serve_flags():
    compose = load_yaml(PROD / "docker-compose.yml")[0]
    unknown = set(flags_in(compose["services"]["server"]["command"])) - serve_flags()
    assert not unknown, unknown


def test_cloud_images_follow_their_contracts():
    sm = dockerfile_instructions(PROD / "sagemaker" / "Dockerfile")
    assert exec_form(last(sm, "ENTRYPOINT")) == ["serve"] and last(sm, "EXPOSE") == str(CLOUD_PORT)
    assert f"127.0.0.1:{CLOUD_PORT}/ping" in last(sm, "ENV")
    vx = dockerfile_instructions(PROD / "vertex" / "Dockerfile")
    entry = exec_form(last(vx, "ENTRYPOINT"))
    assert flag_value(entry, "--contract") == "vertex" and "--port" not in entry  # the port is AIP_HTTP_PORT's
    assert last(vx, "EXPOSE") == str(CLOUD_PORT)


def fake_cli(tmp_path):
    """A stand-in `kernelpytorch` on PATH that records its argv, for the entry-script contract."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "kernelpytorch"
    fake.write_text(f"#!{sys.executable}\nimport json, sys\njson.dump(sys.argv[1:], open({str(tmp_path / 'argv.json')!r}, 'w'))\n")
    fake.chmod(0o755)
    return bindir


def test_sagemaker_entry_script_argv(tmp_path):
    bindir = fake_cli(tmp_path)
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}", KPT_SERVE_ARGS="--level balanced --max-concurrent 32")
    env.pop("KPT_MODEL_DIR", None)
    # SageMaker: `docker run IMAGE serve` -> ENTRYPOINT ["serve"] + "serve".
    subprocess.run(["sh", str(PROD / "sagemaker" / "serve"), "serve"], env=env, check=True, timeout=30)
    argv = json.loads((tmp_path / "argv.json").read_text())
    assert argv == ["serve", "/opt/ml/model", "--contract", "sagemaker", "--level", "balanced", "--max-concurrent", "32"]
    env.update(KPT_MODEL_DIR="/m", KPT_SERVE_ARGS="")
    subprocess.run(["sh", str(PROD / "sagemaker" / "serve"), "--threads", "2"], env=env, check=True, timeout=30)
    assert json.loads((tmp_path / "argv.json").read_text()) == ["serve", "/m", "--contract", "sagemaker", "--threads", "2"]
    assert os.access(PROD / "sagemaker" / "serve", os.X_OK)


# ---- end to end against the real server (loopback only) ----------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, timeout=60):
    """(status, parsed JSON or text) without raising on 4xx/5xx."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read().decode()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


FIXTURES = ROOT / "tests" / "fixtures" / "models"
CAUSAL_FIXTURE = FIXTURES / "llama_gqa3_headdim"   # LlamaForCausalLM, GQA 3, 128 positions, no tokenizer
ENCODER_FIXTURE = FIXTURES / "bert_tokentypes"     # BertModel: the embeddings route


# A tokenizer whose 300 ids cover the fixture's 251 (token-id prompts, decoded text out) and a
# minimal chat template, so text and chat are exercised without a real model.
FIXTURE_TOKENIZER = ROOT / "tests" / "fixtures" / "tokenizer" / "synthetic" / "metaspace_never_decoder.json"
CHAT_TEMPLATE = "{% for m in messages %}{{ m['content'] }} {% endfor %}"


def served_model(tmp_path, fixture=CAUSAL_FIXTURE):
    """A copy of the fixture plus tokenizer.json and a chat template, under the fixture's name."""
    d = tmp_path / fixture.name
    shutil.copytree(fixture, d)
    if fixture == CAUSAL_FIXTURE:
        shutil.copy(FIXTURE_TOKENIZER, d / "tokenizer.json")
        (d / "tokenizer_config.json").write_text(json.dumps({"chat_template": CHAT_TEMPLATE}))
    return d


def serving_cli():
    if serve_help() is None:
        pytest.skip(f"`{CLI} serve --help` is not available yet (build the CLI with serve: scripts/build.sh)")
    return CLI


class Server:
    """A `kernelpytorch serve` process started from a deployment file's command line, on loopback.
    Stops it with SIGTERM (what Docker and Kubernetes send) and checks the drain exits 0."""

    def __init__(self, argv, port, log_path, env=None):
        self.port, self.log_path = port, log_path
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, OMP_NUM_THREADS="1", **(env or {})))

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def output(self):
        self.log.flush()
        return Path(self.log_path).read_text()

    def wait_for(self, path, timeout_s=180):
        """Polls GET path until 200; fails with the server's output if it exits or times out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"the server exited ({self.proc.returncode}) before {path} answered 200:\n{self.output()}")
            try:
                status, body = http("GET", self.url(path), timeout=5)
                if status == 200:
                    return body
            except OSError:
                pass  # not listening yet
            time.sleep(0.1)
        pytest.fail(f"{path} did not answer 200 within {timeout_s} s:\n{self.output()}")

    def stop(self):
        """SIGTERM -> drain -> exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def localize(argv, model_dir, port):
    """A deployment command line made runnable here: the binary is the built CLI, the model is a
    fixture, the port is free, and it binds loopback instead of 0.0.0.0. Nothing else changes."""
    out = list(argv)
    assert out[0] == "kernelpytorch", out
    out[0] = serving_cli()
    for i, a in enumerate(out):
        if a in ("/models/model", "/opt/ml/model"):
            out[i] = str(model_dir)
        if i > 0 and out[i - 1] == "--port":
            out[i] = str(port)
        if i > 0 and out[i - 1] == "--host":
            out[i] = "127.0.0.1"
    return out


def dockerfile_command(path):
    instrs = dockerfile_instructions(path)
    if path.parent != PROD:  # the cloud images inherit CMD/ENTRYPOINT from the production image
        base = dockerfile_instructions(PROD / "Dockerfile.production")
        instrs = base + instrs
    entry = exec_form(last(instrs, "ENTRYPOINT"))
    cmd = exec_form(last(instrs, "CMD")) if last(instrs, "CMD") else []
    return entry + cmd


def fixture_prompt():
    g = json.loads((CAUSAL_FIXTURE / "generate.json").read_text())
    return g["prompt_ids"]


def check_completion(body, n_tokens):
    assert body["object"] == "text_completion", body
    assert len(body["choices"]) == 1 and body["choices"][0]["finish_reason"] in ("length", "stop")
    assert body["usage"]["prompt_tokens"] == len(fixture_prompt())
    assert 1 <= body["usage"]["completion_tokens"] <= n_tokens


def deployment_commands():
    """(name, argv, probe paths) of every way the deployment files start the server."""
    compose = load_yaml(PROD / "docker-compose.yml")[0]["services"]["server"]
    image = dockerfile_command(PROD / "Dockerfile.production")
    entry = exec_form(last(dockerfile_instructions(PROD / "Dockerfile.production"), "ENTRYPOINT"))
    c = deployment_container()
    probes = [c[p]["httpGet"]["path"] for p in ("startupProbe", "readinessProbe", "livenessProbe")]
    return [("docker-image", image, ["/health", "/ready"]),
            ("compose", entry + compose["command"], ["/health", "/ready"]),
            ("kubernetes", entry + k8s_args(), probes)]


@pytest.mark.parametrize("which", ["docker-image", "compose", "kubernetes"])
def test_deployment_command_serves(which, tmp_path):
    """The exact command of the image / compose / Deployment (with the ConfigMap expanded) serves a
    fixture: probes, /metrics, /v1/models, a completion, the image's HEALTHCHECK, SIGTERM -> 0.
    `--device cuda` (compose, Kubernetes) becomes `cpu`: this machine has no GPU."""
    name, argv, probes = [d for d in deployment_commands() if d[0] == which][0]
    port = free_port()
    argv = localize(argv, served_model(tmp_path), port)
    if "--device" in argv:
        argv[argv.index("--device") + 1] = "cpu"
    with Server(argv, port, tmp_path / "server.log") as srv:
        for path in probes:
            srv.wait_for(path)
        status, metrics = http("GET", srv.url("/metrics"))
        assert status == 200 and "kpt_model_ready 1" in metrics and "kpt_requests_total" in metrics
        status, models = http("GET", srv.url("/v1/models"))
        model = flag_value(argv, "--served-model-name") or CAUSAL_FIXTURE.name
        assert status == 200 and [m["id"] for m in models["data"]] == [model]
        status, body = http("POST", srv.url("/v1/completions"),
                            {"model": model, "prompt": fixture_prompt(), "max_tokens": 6, "temperature": 0})
        assert status == 200, body
        check_completion(body, 6)
        assert body["choices"][0]["text"]
        if which == "docker-image":  # the HEALTHCHECK command itself, against the live server
            hc = exec_form(last(dockerfile_instructions(PROD / "Dockerfile.production"), "HEALTHCHECK")
                           .split("CMD", 1)[1].strip())
            hc[0] = sys.executable
            env = dict(os.environ, KPT_HEALTHCHECK_URL=srv.url("/health"))
            assert subprocess.run(hc, env=env, timeout=30).returncode == 0
        assert srv.stop() == 0, srv.output()


def test_sagemaker_contract_end_to_end(tmp_path):
    """sagemaker/serve as SageMaker starts it (`serve` argument, model in KPT_MODEL_DIR's place of
    /opt/ml/model): /ping, and /invocations choosing completion / chat / embeddings by the body's key."""
    cli = serving_cli()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "kernelpytorch").symlink_to(Path(cli).resolve())
    script = PROD / "sagemaker" / "serve"

    def start(model_dir, port, log):
        env = {"PATH": f"{bindir}:{os.environ['PATH']}", "KPT_MODEL_DIR": str(model_dir),
               "KPT_SERVE_ARGS": f"--host 127.0.0.1 --port {port} --device cpu"}
        return Server(["sh", str(script), "serve"], port, tmp_path / log, env=env)

    port = free_port()
    with start(served_model(tmp_path), port, "causal.log") as srv:
        assert srv.wait_for("/ping")["status"] == "ready"
        model = CAUSAL_FIXTURE.name
        req = {"model": model, "prompt": fixture_prompt(), "max_tokens": 5, "temperature": 0}
        status, body = http("POST", srv.url("/invocations"), req)
        assert status == 200, body
        check_completion(body, 5)
        status, direct = http("POST", srv.url("/v1/completions"), req)
        assert status == 200 and direct["choices"][0]["text"] == body["choices"][0]["text"]
        assert direct["usage"] == body["usage"]
        assert body["choices"][0]["text"], "no text: the tokenizer did not decode"
        # Streaming (SageMaker's InvokeEndpointWithResponseStream passes the event stream through).
        status, sse = http("POST", srv.url("/invocations"), dict(req, stream=True))
        events = [line[len("data: "):] for line in sse.splitlines() if line.startswith("data: ")]
        assert status == 200 and events[-1] == "[DONE]", sse
        assert "".join(json.loads(e)["choices"][0]["text"] for e in events[:-1]) == body["choices"][0]["text"]
        chat = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3, "temperature": 0}
        status, body = http("POST", srv.url("/invocations"), chat)
        assert status == 200 and body["object"] == "chat.completion", body
        assert body["choices"][0]["message"]["role"] == "assistant"
        status, direct = http("POST", srv.url("/v1/chat/completions"), chat)
        assert status == 200 and direct["choices"][0]["message"] == body["choices"][0]["message"]
        status, body = http("POST", srv.url("/invocations"), {"model": model, "max_tokens": 2})
        assert status == 400 and "messages" in body["error"]["message"], body
        status, _ = http("POST", srv.url("/invocations"), None)
        assert 400 <= status < 500
        assert srv.stop() == 0, srv.output()

    port = free_port()
    with start(served_model(tmp_path, ENCODER_FIXTURE), port, "encoder.log") as srv:
        srv.wait_for("/ping")
        ids = json.loads((ENCODER_FIXTURE / "forward_single.json").read_text())["input_ids"][0]
        status, body = http("POST", srv.url("/invocations"), {"model": ENCODER_FIXTURE.name, "input": [ids]})
        assert status == 200, body
        hidden = json.loads((ENCODER_FIXTURE / "config.json").read_text())["hidden_size"]
        assert body["object"] == "list" and len(body["data"]) == 1
        assert len(body["data"][0]["embedding"]) == hidden
        assert srv.stop() == 0, srv.output()


def test_vertex_contract_end_to_end(tmp_path):
    """The Vertex AI image's command with AIP_HTTP_PORT / AIP_HEALTH_ROUTE / AIP_PREDICT_ROUTE set
    as Vertex AI sets them: the health route, {"instances"} -> {"predictions"}, and predictions equal
    to the same requests sent one at a time to /v1/completions."""
    port = free_port()
    argv = localize(dockerfile_command(PROD / "vertex" / "Dockerfile"), served_model(tmp_path), port)
    assert "--port" not in argv  # the port comes from AIP_HTTP_PORT
    env = {"AIP_HTTP_PORT": str(port), "AIP_HEALTH_ROUTE": "/v1/endpoints/e/health",
           "AIP_PREDICT_ROUTE": "/v1/endpoints/e/deployedModels/m:predict"}
    with Server(argv + ["--device", "cpu"], port, tmp_path / "vertex.log", env=env) as srv:
        srv.wait_for(env["AIP_HEALTH_ROUTE"])
        prompt = fixture_prompt()
        instances = [{"prompt": prompt, "max_tokens": 4, "temperature": 0},
                     {"prompt": prompt[:4], "max_tokens": 3, "temperature": 0}]
        status, body = http("POST", srv.url(env["AIP_PREDICT_ROUTE"]), {"instances": instances})
        assert status == 200, body
        assert len(body["predictions"]) == 2
        for inst, pred in zip(instances, body["predictions"]):
            assert pred["object"] == "text_completion"
            assert pred["usage"]["prompt_tokens"] == len(inst["prompt"])
            status, one = http("POST", srv.url("/v1/completions"), dict(inst, model=CAUSAL_FIXTURE.name))
            assert status == 200 and one["usage"] == pred["usage"]
            assert one["choices"][0]["text"] == pred["choices"][0]["text"] != ""
        status, body = http("POST", srv.url(env["AIP_PREDICT_ROUTE"]), {"prompt": prompt})
        assert status == 400 and "instances" in body["error"]["message"], body
        assert srv.stop() == 0, srv.output()


def test_api_key_from_the_environment_guards_only_the_api(tmp_path):
    """The Deployment's Secret reaches serve as KPT_API_KEY: /v1/* needs the key, while the probe
    routes and /metrics (kubelet, Prometheus) answer without it."""
    port = free_port()
    entry = exec_form(last(dockerfile_instructions(PROD / "Dockerfile.production"), "ENTRYPOINT"))
    argv = localize(entry + k8s_args(), served_model(tmp_path), port)
    argv[argv.index("--device") + 1] = "cpu"
    key = "k8s-secret-value"
    with Server(argv, port, tmp_path / "server.log", env={"KPT_API_KEY": key}) as srv:
        for path in ("/health", "/ready"):
            srv.wait_for(path)
        assert http("GET", srv.url("/metrics"))[0] == 200
        status, body = http("GET", srv.url("/v1/models"))
        assert status == 401, body
        req = urllib.request.Request(srv.url("/v1/models"), headers={"Authorization": f"Bearer {key}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 200
        assert srv.stop() == 0, srv.output()


def test_kubernetes_args_keep_the_optimized_plan(tmp_path):
    """The Deployment passes no --level, so an optimized directory is served at the level its
    kpt_plan.json recorded (conservative here, not serve's default, reference)."""
    cli = serving_cli()
    model = served_model(tmp_path)
    samples = tmp_path / "samples.json"  # texts whose ids fit the fixture's 251-token vocabulary
    samples.write_text(json.dumps(["hi there, how are you", "the cat sat on the mat"]))
    opt = tmp_path / "model-opt"
    p = subprocess.run([cli, "optimize", str(model), "--level", "conservative", "--samples", str(samples),
                        "--repeat", "1", "-o", str(opt)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert json.loads((opt / "kpt_plan.json").read_text())["level"] == "conservative"
    assert "--level" not in k8s_args()
    port = free_port()
    entry = exec_form(last(dockerfile_instructions(PROD / "Dockerfile.production"), "ENTRYPOINT"))
    argv = localize(entry + k8s_args(), opt, port)
    argv[argv.index("--device") + 1] = "cpu"
    with Server(argv, port, tmp_path / "server.log") as srv:
        srv.wait_for("/ready")
        assert re.search(r"ready: .*level conservative", srv.output()), srv.output()
        assert srv.stop() == 0, srv.output()
