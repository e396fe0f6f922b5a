# pgparity image: the CLI, the operator and the validation Jobs all run from it.
# Build: docker build -t pgparity:dev .   (not built on the development machines: no Docker engine)

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
# PostgreSQL 15 server binaries: `pgparity validate --local` and seeding use initdb,
# pg_basebackup, pg_dump/pg_restore and psql from the OS package.
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 postgresql-client-15 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
 && useradd --uid 10001 --create-home --shell /usr/sbin/nologin pgparity
USER 10001
ENV PGPARITY_PG_BINDIR=/usr/lib/postgresql/15/bin
ENTRYPOINT ["pgparity"]
CMD ["--help"]
