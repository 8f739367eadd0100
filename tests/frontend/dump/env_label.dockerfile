ENV a=1 b="2 3"
LABEL "a b"=c d=
ENV x =y
LABEL a = b
ENV PATH /usr/bin:$PATH
ENV  k  v  w 
ENV a='b c' d=e\ f
LABEL x="unclosed
ENV e=
ENV =x
ENV a=b=c
LABEL a="x\"y" b='p\'
ENV k	 v
