
# escape=`
RUN a \
 b
