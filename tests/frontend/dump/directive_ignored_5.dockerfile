FROM x
# escape=`
RUN a \
 b
