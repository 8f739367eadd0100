FROM x
RUN <<EOF
FROM y
EOF
RUN ["sh", "<<X"]
X
COPY <<A <<B /dst
B
A
A
B
RUN <<-EOT bash
	echo hi
	EOT
RUN 3<<'EOF' cat <&3
# not a comment
\
EOF
RUN <<"EOF"
EOF
RUN <<EO"F"
EOF
RUN "<<EOF" a<<b
USER <<X
X
RUN --mount=type=cache,target=/x <<MOUNT
x
MOUNT
ONBUILD RUN <<E
body
E
RUN <<  SP
SP
RUN cat <<E>out
E>out
RUN echo 'unterminated <<Q
RUN <<EOF
body
EOF
COPY ["a", <<EOF
EOF
RUN cat<<EOF
EOF
ADD <<A /a
A
RUN <<EOF \
  && echo
body
EOF
CMD <<EOF
EOF
