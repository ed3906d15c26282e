# Heroku sources this file at the start of every dyno, before the Procfile's command; nothing
# else reads it. Heroku Key-Value Store (Redis) serves TLS with a self-signed certificate and
# owns REDIS_URL (it rotates the credentials), so redis-py's own URL option that accepts such
# a certificate is appended here rather than in a config var (DESIGN §3.3).
if [ -n "${DYNO:-}" ]; then
  case "${REDIS_URL:-}" in
    rediss://*ssl_cert_reqs=*) ;;
    rediss://*\?*) export REDIS_URL="${REDIS_URL}&ssl_cert_reqs=none" ;;
    rediss://*) export REDIS_URL="${REDIS_URL}?ssl_cert_reqs=none" ;;
  esac
fi
