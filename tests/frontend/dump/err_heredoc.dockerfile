FROM x
RUN <<EOF
body
