COPY -- foo /tmp/
COPY --a -- --b c
RUN --x=\"q\" a
RUN --a="" b
RUN -x y
RUN "--a" b
RUN --a='b c' --d="e\"f" g
RUN --a=é x
RUN --e=x\ y z
RUN --only
RUN --a=1   --b   rest  of  line
RUN --a='x\'y' z
COPY --a --
RUN --""
RUN --a --b=[1] ["x"]
