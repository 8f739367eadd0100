ONBUILD RUN echo x
ONBUILD --f COPY --from=a b c
ONBUILD ONBUILD RUN x
ONBUILD FOO a b
ONBUILD
onbuild run   a  b
ONBUILD ENV a=b c=d
ONBUILD CMD ["x"]
