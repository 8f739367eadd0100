FROM x
ONBUILD COPY <<A /a
body
