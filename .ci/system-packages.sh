#!/usr/bin/env bash
# System packages the tests need: Redis and PostgreSQL servers, headless Chromium for the
# browser tests, docker-compose to validate the compose file, nginx to run its proxy's config. Installed with apt-get only when
# missing and when running as root; otherwise we say what is missing and carry on.
set -uo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v pg_ctlcluster >/dev/null || need+=(postgresql)
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing system packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "warning: missing system packages (install them yourself): ${need[*]}" >&2
fi
exit 0
