FROM x
ENV a=b c
