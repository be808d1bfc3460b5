"""The compose file, validated by docker-compose itself (`docker-compose config`; no Docker
engine runs here) and checked for what the deployment promises: healthchecks everywhere, GPU
workers that scale, Redis that keeps its messages, secrets that must be set."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SERVICES = {"redis", "postgres", "migrate", "proxy", "web", "streams", "worker", "evaluate",
            "reaper", "webhooks", "flower"}
ONE_SHOT = {"migrate", "weights", "train"}  # jobs that exit: nothing to health-check


def _docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "docker-compose"], check=False,
                       capture_output=True, timeout=600, env={**os.environ,
                                                              "DEBIAN_FRONTEND": "noninteractive"})
        found = shutil.which("docker-compose")
    if not found:
        pytest.skip("docker-compose is not installed and could not be installed with apt-get "
                    "(not root, or no package source)")
    return found


def _run_config(env_file: Path) -> subprocess.CompletedProcess:
    # A clean environment: only the env file decides the variables.
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}}
    return subprocess.run(
        [_docker_compose(), "--env-file", str(env_file), "-f", str(REPO / "docker-compose.yml"),
         "config"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def config() -> dict:
    result = _run_config(REPO / ".env.example")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_validates_with_every_service(config):
    assert SERVICES <= set(config["services"])


def test_every_long_running_service_has_a_healthcheck(config):
    for name, service in config["services"].items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", f"{name} is a one-shot job"
            continue
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name}: no healthcheck"


def test_worker_gets_a_gpu_scales_and_reads_weights_read_only(config):
    worker = config["services"]["worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and d["count"] == 1 and "gpu" in d["capabilities"]
               for d in devices)
    # --scale worker=N: replicas must not fight over a name or a host port.
    assert "container_name" not in worker and "ports" not in worker
    weights_dir = worker["environment"]["ANYCOST_WEIGHTS_DIR"]
    mounts = [v for v in worker["volumes"] if v.split(":")[1] == weights_dir]
    assert mounts and mounts[0].endswith(":ro"), worker["volumes"]
    command = worker["command"]
    assert command[:4] == ["celery", "-A", "worker.process.celery_app", "worker"]
    assert command[command.index("-c") + 1] == "1", "one process per GPU"
    assert set(command[command.index("-Q") + 1].split(",")) == {"preview", "final"}
    assert worker["build"]["dockerfile"] == "worker/Dockerfile"


def test_redis_keeps_messages(config):
    redis = config["services"]["redis"]
    command = redis["command"] if isinstance(redis["command"], str) else " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command
    assert any(v.split(":")[1] == "/data" for v in redis["volumes"])
    assert config["services"]["postgres"]["volumes"]


def test_start_order(config):
    services = config["services"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["command"][-3:] == ["-m", "shared.store.migrate", "upgrade"]
    for name in ("web", "worker", "evaluate", "reaper"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
        assert deps["redis"]["condition"] == "service_healthy", name


def test_web_runs_gunicorn_with_several_workers_from_the_torch_free_image(config):
    web = config["services"]["web"]
    assert web["command"][0] == "gunicorn" and "web:create_app()" in web["command"]
    assert int(web["environment"]["GUNICORN_WORKERS"]) >= 2
    assert web["build"]["dockerfile"] == "web/Dockerfile"
    assert config["services"]["reaper"]["image"] == web["image"]  # the reaper needs no torch
    assert "PROMETHEUS_MULTIPROC_DIR" in web["environment"]


def test_services_share_one_database_and_broker(config):
    urls = {(s["environment"]["DATABASE_URL"], s["environment"]["REDIS_URL"])
            for name, s in config["services"].items()
            if name in {"migrate", "web", "worker", "evaluate", "reaper", "webhooks"}}
    assert len(urls) == 1
    database_url, redis_url = urls.pop()
    assert database_url.startswith("postgresql+psycopg://") and "@postgres:5432/" in database_url
    assert redis_url.startswith("redis://") and "@redis:6379/" in redis_url


def test_secrets_must_be_set(tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = _run_config(empty)
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr or "REDIS_PASSWORD" in result.stderr


def test_training_container_uses_every_gpu_through_torchrun(config):
    train = config["services"]["train"]
    assert train["profiles"] == ["train"]  # a tool: `up` does not start it
    assert train["image"] == config["services"]["worker"]["image"]
    entry = train["entrypoint"]
    assert entry[0] == "torchrun" and entry[-2:] == ["-m", "worker.train"]
    assert entry[entry.index("--nproc_per_node") + 1] == "gpu"
    assert "--rdzv-endpoint" in entry and "--nnodes" in entry
    devices = train["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and d["count"] == "all" for d in devices)
    mounts = {v.split(":")[1]: v for v in train["volumes"]}
    assert mounts["/weights"].endswith(":ro") and mounts["/data"].endswith(":ro")
    assert not mounts["/runs"].endswith(":ro")


def test_a_car_worker_serves_a_second_config_beside_the_face_worker(config):
    face, car = config["services"]["worker"], config["services"]["worker-car"]
    assert car["environment"]["ANYCOST_WORKER_MODEL"] == "anycost-car-config-f"
    assert "ANYCOST_WORKER_MODEL" not in face["environment"]
    assert car["environment"]["ANYCOST_MODEL"] == face["environment"]["ANYCOST_MODEL"]
    for key in ("DATABASE_URL", "REDIS_URL"):  # one database, one broker
        assert car["environment"][key] == face["environment"][key]
    assert car["command"] == face["command"], "-Q preview,final means the car's own queues"
    assert car["deploy"] == face["deploy"] and "ports" not in car


def test_evaluations_have_a_worker_of_their_own_one_at_a_time(config):
    """Evaluations queued from the API or the model page are taken (they waited forever when no
    worker consumed the `evaluate` queue), by one process, away from the render workers."""
    services = config["services"]
    evaluate, face = services["evaluate"], services["worker"]
    assert "profiles" not in evaluate, "`up` starts it"
    command = evaluate["command"]
    assert command[:4] == ["celery", "-A", "worker.process.celery_app", "worker"]
    assert command[command.index("-Q") + 1] == "evaluate"
    assert command[command.index("-c") + 1] == "1"
    assert face["command"][face["command"].index("-Q") + 1] == "preview,final"  # no evaluations
    assert evaluate["image"] == face["image"]
    assert evaluate["environment"]["ANYCOST_MODEL"] == face["environment"]["ANYCOST_MODEL"]
    assert evaluate["deploy"] == face["deploy"]  # a GPU of its own
    assert any(v.endswith(":/weights:ro") for v in evaluate["volumes"])


def test_webhook_deliveries_have_a_process(config):
    webhooks = config["services"]["webhooks"]
    assert "profiles" not in webhooks, "`up` starts it"
    assert webhooks["command"] == ["flask", "--app", "web", "webhooks", "deliver"]
    assert webhooks["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_the_weights_tool_imports_a_mounted_file_of_the_route_that_works_today(config):
    """The released Anycost files are gone: by default the tool imports NVIDIA's FFHQ pickle from
    a mounted directory (the command and the file are variables), into the workers' weights, and
    the workers serve that config."""
    services = config["services"]
    weights = services["weights"]
    assert weights["profiles"] == ["tools"]
    assert weights["entrypoint"] == ["python", "-m", "worker.anycost.weights"]
    assert weights["command"] == ["import-nvidia", "/import/stylegan2-ffhq-1024x1024.pkl",
                                  "--config", "stylegan2-ffhq-config-f"]
    mounts = {v.split(":")[1]: v for v in weights["volumes"]}
    assert mounts["/import"].endswith(":ro") and not mounts["/weights"].endswith(":ro")
    assert weights["environment"]["ANYCOST_WEIGHTS_DIR"] == "/weights"
    assert services["worker"]["environment"]["ANYCOST_MODEL"] == "stylegan2-ffhq-config-f"


def test_the_weights_tool_takes_the_import_command_and_file_from_the_environment(tmp_path):
    env = tmp_path / "e4e.env"
    env.write_text((REPO / ".env.example").read_text()
                   + "WEIGHTS_IMPORT_COMMAND=import-e4e\nWEIGHTS_IMPORT_FILE=e4e_ffhq_encode.pt\n")
    result = _run_config(env)
    assert result.returncode == 0, result.stderr
    command = yaml.safe_load(result.stdout)["services"]["weights"]["command"]
    assert command[:2] == ["import-e4e", "/import/e4e_ffhq_encode.pt"]


def _published(port) -> tuple[str, str]:
    """(host address, container port) of a published port, in either docker-compose's form."""
    if isinstance(port, dict):
        return port["host_ip"], str(port["target"])
    parts = port.split("/")[0].split(":")
    return parts[0], parts[-1]


def test_only_the_proxy_is_published_on_loopback_unless_asked(config, tmp_path):
    """Clients reach gunicorn and the stream service through the proxy only, so the one proxy
    hop both trust (ANYCOST_PROXY_HOPS=1) cannot be forged by reaching them directly."""
    services = config["services"]
    proxy = services["proxy"]
    # .env.example serves clients directly
    assert _published(proxy["ports"][0]) == ("0.0.0.0", "80")
    assert proxy["image"].startswith("nginx:")
    for name in ("web", "streams"):
        assert "ports" not in services[name], f"{name} is reached through the proxy only"
        assert services[name]["environment"]["ANYCOST_PROXY_HOPS"] == "1"
    env = tmp_path / ".env"
    env.write_text("\n".join(line for line in (REPO / ".env.example").read_text().splitlines()
                             if not line.startswith(("WEB_BIND=", "ANYCOST_PROXY_HOPS="))))
    result = _run_config(env)
    assert result.returncode == 0, result.stderr
    defaults = yaml.safe_load(result.stdout)["services"]
    assert _published(defaults["proxy"]["ports"][0])[0] == "127.0.0.1"
    assert defaults["web"]["environment"]["ANYCOST_PROXY_HOPS"] == "1"


def test_the_proxy_sends_event_streams_to_the_stream_service(config):
    """The stream service runs the web image's `python -m web.streams` with the web app's
    settings (the session key, the stream limits); nginx routes the events route to it,
    unbuffered, and everything else to gunicorn."""
    services = config["services"]
    streams, web = services["streams"], services["web"]
    assert streams["command"] == ["python", "-m", "web.streams"]
    assert streams["image"] == web["image"]
    for key in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ANYCOST_SSE_MAX_PER_USER",
                "ANYCOST_SSE_MAX_SECONDS", "ANYCOST_PUBLIC_URL"):
        assert streams["environment"][key] == web["environment"][key], key
    assert streams["environment"]["ANYCOST_STREAMS_HOST"] == "0.0.0.0"
    port = streams["environment"]["ANYCOST_STREAMS_PORT"]
    assert set(services["proxy"]["depends_on"]) == {"web", "streams"}
    mount = services["proxy"]["volumes"][0]
    source, target = mount.split(":")[:2]
    assert target == "/etc/nginx/conf.d/default.conf" and mount.endswith(":ro")
    conf = Path(source).read_text()
    events = conf[conf.index("location ~ ^/api/v1/batches/[^/]+/events$"):]
    events = events[:events.index("}")]
    assert f"streams:{port}" in events and "proxy_buffering off;" in events
    read_timeout = int(events.split("proxy_read_timeout ")[1].split("s;")[0])
    assert read_timeout > int(streams["environment"]["ANYCOST_SSE_MAX_SECONDS"])
    rest = conf[conf.index("location / {"):]
    assert "web:8000" in rest[:rest.index("}")]


def test_gunicorn_refuses_a_trusted_proxy_header_on_every_interface():
    import runpy

    conf = str(REPO / "web" / "gunicorn.conf.py")
    check = runpy.run_path(conf)["check_published_bind"]
    for bind in ("0.0.0.0", "::", "93.184.215.14"):
        with pytest.raises(SystemExit, match="forge"):
            check({"ANYCOST_PROXY_HOPS": "1", "ANYCOST_PUBLISHED_BIND": bind})
    for env in ({"ANYCOST_PROXY_HOPS": "1", "ANYCOST_PUBLISHED_BIND": "127.0.0.1"},
                {"ANYCOST_PROXY_HOPS": "1", "ANYCOST_PUBLISHED_BIND": "10.0.0.5"},
                {"ANYCOST_PROXY_HOPS": "0", "ANYCOST_PUBLISHED_BIND": "0.0.0.0"}, {}):
        check(env)
