# a comment
# escape=`
RUN a \
 b
