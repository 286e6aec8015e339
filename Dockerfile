# syntax=docker/dockerfile:1
# Build stage: install the package and its dependencies into a virtualenv.
FROM python:3.11-slim AS build
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install --no-cache-dir --upgrade pip && pip install --no-cache-dir .

# Runtime stage: the virtualenv, the migrations, a non-root user.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 creneau
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv/creneau
COPY alembic.ini ./
COPY migrations ./migrations
COPY app ./app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/srv/creneau \
    DATA_DIR=/srv/creneau/data
RUN mkdir -p /srv/creneau/data && chown -R creneau:creneau /srv/creneau
USER creneau
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/health/live')" || exit 1
CMD ["creneau", "serve", "--host", "0.0.0.0", "--port", "8000"]
