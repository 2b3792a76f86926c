# syntax=docker/dockerfile:1
#
# The operator as one `deno compile` binary on distroless: no shell, no package manager, uid 65532.
#
# Build (needs internet: the Deno image, npm and the `denort` runtime that `deno compile` downloads):
#   docker buildx build --platform linux/amd64,linux/arm64 -t ghcr.io/<owner>/backrest-volsync-operator .
# CI does this in .github/workflows/image.yaml. It cannot be built on the project's dev machines (no Docker
# engine, and `denort` is not on any registry they reach); there the tests run the same program with
# `deno run` and the same permission set (`-P=operator` in deno.json).

# The compiler always runs natively on the build machine and cross-compiles for the target platform
# (`deno compile --target`), so multi-arch builds need no emulation.
FROM --platform=$BUILDPLATFORM denoland/deno:2.9.6 AS build
ARG TARGETARCH
WORKDIR /src
ENV DENO_NO_UPDATE_CHECK=1

COPY deno.json deno.lock ./
COPY main.ts ./
COPY lib/ lib/
COPY gen/ gen/

# Fetch the dependencies of main.ts exactly as deno.lock pins them (fails if the lock file is stale).
RUN deno install --frozen --entrypoint main.ts

# `deno task compile` is the one definition of the compile flags (-P=operator --no-code-cache ...); for a
# foreign architecture the same command runs with `--target` added right after `deno compile`.
RUN set -eu; \
    case "$TARGETARCH" in \
      amd64) target=x86_64-unknown-linux-gnu ;; \
      arm64) target=aarch64-unknown-linux-gnu ;; \
      *) echo "unsupported TARGETARCH: $TARGETARCH" >&2; exit 1 ;; \
    esac; \
    cmd=$(deno eval --quiet 'console.log(JSON.parse(Deno.readTextFileSync("deno.json")).tasks.compile.command)'); \
    case "$cmd" in "deno compile "*) ;; *) echo "unexpected compile task: $cmd" >&2; exit 1 ;; esac; \
    eval "deno compile --frozen --target $target ${cmd#deno compile }"; \
    test -x dist/backrest-volsync-operator

# glibc and libgcc are what the Deno runtime needs; `nonroot` runs as uid/gid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/dist/backrest-volsync-operator /backrest-volsync-operator
# glibc malloc: two arenas, and large buffers (list and watch bodies) returned to the kernel when freed.
# Measured at 5 000 Bindings (bench/scenarios/memory.ts): the malloc heap 25 MB -> 9 MB resident.
ENV MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072 MALLOC_TRIM_THRESHOLD_=131072
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/backrest-volsync-operator"]
