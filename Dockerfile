# syncbot in a container: the same package and commands the tests run (`syncbot serve`, `syncbot db upgrade`).
# Build: docker build -t syncbot .   Run: see compose.yaml (PostgreSQL and two replicas).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY alembic ./alembic
COPY alembic.ini ./
COPY bot ./bot
COPY handlers ./handlers
COPY sync ./sync
COPY sandbox ./sandbox
# editable, as `make` installs it: the migrations are read from /app/alembic (sync/db.py MIGRATIONS_DIR)
RUN pip install --no-cache-dir -e . && useradd --create-home syncbot
USER syncbot
ENV PORT=3000
EXPOSE 3000
HEALTHCHECK CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/healthz')"
CMD ["syncbot", "serve"]
