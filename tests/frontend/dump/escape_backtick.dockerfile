# escape=`
FROM x
RUN a `
  b
RUN c \
RUN d ``
COPY --from=`"q `" a b
ARG x=`"y
ENV k=a` b
RUN <<EOF
body `
EOF
