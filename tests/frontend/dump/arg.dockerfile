ARG abc="123 456" def
ARG a="b c" d=e\ f g
ARG x='a\ b'
ARG y="a\"b" z
ARG q="a b
ARG ÿ=1
