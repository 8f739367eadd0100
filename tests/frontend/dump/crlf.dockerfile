FROM x
RUN a \
  b
RUN c
RUN de
