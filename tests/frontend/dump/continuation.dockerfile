RUN echo hello\
  world
RUN a \
 b
ENV E hello\
\
world
RUN a \
# c

 b
RUN p \
  # x \
 q
RUN t \ 	 
u
RUN x \\
RUN y
   # indented comment
RUN echo hello \