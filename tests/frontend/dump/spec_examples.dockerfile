FROM --platform=$BUILDPLATFORM golang:1.22 AS build
RUN --mount=type=cache,target=/x ["echo","a"]
COPY --from="a b" x y
ONBUILD --a ONBUILD --b RUN --c x
FooBar a b c
Run  echo   hi
ENV a\ b c
ARG a="b c" d=e\ f g
RUN echo  é x
RUN ab
CMD ["\u00e9", "\ud800"]
RUN ["a"]
RUN <<EOF
FROM y
EOF
RUN ["sh", "<<X"]
X
