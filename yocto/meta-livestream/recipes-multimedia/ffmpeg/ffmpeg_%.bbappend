# livestreamd encodes with libx264 (GPL); enabled only in the livestream
# distribution so that the layer changes nothing for other distros.
# h264_v4l2m2m, the mpegts, tee and flv muxers, the udp/rtmp/pipe/file
# protocols, the scale/fps filters and lavfi testsrc are in the default build.
# ffmpeg and x264 carry LICENSE_FLAGS = "commercial": accept them in the
# build configuration (yocto/kas/livestream-base.yml), not in this layer:
#   LICENSE_FLAGS_ACCEPTED += "commercial_ffmpeg commercial_x264"
PACKAGECONFIG:append:livestream = " gpl x264"
