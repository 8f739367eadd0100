FROM x
RUN [{}]
