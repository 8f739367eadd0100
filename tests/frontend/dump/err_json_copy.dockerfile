FROM x
COPY ["a", null]
