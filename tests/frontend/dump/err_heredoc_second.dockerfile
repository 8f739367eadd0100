FROM x
COPY <<A <<B /
A
B-not
