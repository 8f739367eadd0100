#!/bin/sh
# escape=`
RUN a \
 b
