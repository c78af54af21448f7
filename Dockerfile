# syntax=docker/dockerfile:1
# podid's image: built on the official Swift image, run on Debian slim as a non-root user. The
# final image holds only the binary (Swift runtime and Foundation linked statically) and its
# resource bundles: the migrations, the aad-pod-identity CRDs the Kubernetes simulator serves, and
# the embedded OpenAPI document.

FROM swift:6.2-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/src/.build \
    swift build -c release --product podid --static-swift-stdlib \
 && mkdir -p /out \
 && cp .build/release/podid /out/ \
 && cp -R .build/release/podid_Store.resources .build/release/podid_Simulators.resources /out/ \
 && if [ -d .build/release/podid_HTTP.resources ]; then cp -R .build/release/podid_HTTP.resources /out/; fi

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin podid
# Resource bundles sit next to the binary, where it looks for them.
COPY --from=build /out/ /opt/podid/
ENV PATH=/opt/podid:$PATH \
    PODID_HTTP_HOST=0.0.0.0 \
    PODID_LOG_FORMAT=json
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["podid"]
CMD ["serve"]
