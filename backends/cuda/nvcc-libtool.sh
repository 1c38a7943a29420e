#!/bin/sh
# nvcc-libtool.sh NVCC ARGS... — runs nvcc as the compiler of
# `libtool --mode=compile`: libtool adds the C compiler's PIC flag (-fPIC),
# which nvcc takes only through -Xcompiler. Every other argument is passed on.
nvcc=$1
shift
for arg do
    shift
    case $arg in
    -fPIC) set -- "$@" -Xcompiler -fPIC ;;
    *) set -- "$@" "$arg" ;;
    esac
done
exec "$nvcc" "$@"
