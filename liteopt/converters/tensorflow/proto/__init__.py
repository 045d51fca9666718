"""A subset of TensorFlow's GraphDef protos (package liteopt_tf), compiled by scripts/gen_tf_proto.sh."""
