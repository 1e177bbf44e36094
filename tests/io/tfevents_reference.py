#!/usr/bin/python3
"""An independent reader of TensorBoard event files for tests/io/tfevents_test.cpp: the record framing checked
with python3-crc32c, the Event and Summary messages decoded with python3-protobuf from descriptors built here
(tensorboard's event.proto and summary.proto, the fields scalars use).

    /usr/bin/python3 tests/io/tfevents_reference.py EVENTS_FILE

Prints one JSON object: {"file_version": ..., "records": N, "scalars": [[step, tag, value, wall_time], ...]}.
Exits 1 naming the record when a length or data CRC does not match or the file ends inside a record; exits 3
when python3-protobuf or python3-crc32c is missing.
"""
import json
import struct
import sys

try:
    import crc32c
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
except ImportError as e:
    print("missing module: %s (apt-get install python3-protobuf python3-crc32c)" % e, file=sys.stderr)
    sys.exit(3)


def event_class():
    F = descriptor_pb2.FieldDescriptorProto
    f = descriptor_pb2.FileDescriptorProto(name="mtl_test_event.proto", package="tensorboard", syntax="proto3")
    summary = f.message_type.add(name="Summary")
    value = summary.nested_type.add(name="Value")
    value.field.add(name="tag", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    value.field.add(name="simple_value", number=2, type=F.TYPE_FLOAT, label=F.LABEL_OPTIONAL)
    summary.field.add(name="value", number=1, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED,
                      type_name=".tensorboard.Summary.Value")
    event = f.message_type.add(name="Event")
    event.field.add(name="wall_time", number=1, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    event.field.add(name="step", number=2, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    event.field.add(name="file_version", number=3, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    event.field.add(name="summary", number=5, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL,
                    type_name=".tensorboard.Summary")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_factory.MessageFactory(pool).GetPrototype(pool.FindMessageTypeByName("tensorboard.Event"))


def masked(data):
    c = crc32c.crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    Event = event_class()
    blob = open(sys.argv[1], "rb").read()
    pos, n, out = 0, 0, {"file_version": None, "scalars": []}
    while pos < len(blob):
        if pos + 12 > len(blob):
            sys.exit("record %d: the file ends inside its header" % n)
        header = blob[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", blob[pos + 8:pos + 12])
        if length_crc != masked(header):
            sys.exit("record %d: length CRC mismatch" % n)
        data = blob[pos + 12:pos + 12 + length]
        if len(data) != length or pos + 16 + length > len(blob):
            sys.exit("record %d: the file ends inside its data" % n)
        (data_crc,) = struct.unpack("<I", blob[pos + 12 + length:pos + 16 + length])
        if data_crc != masked(data):
            sys.exit("record %d: data CRC mismatch" % n)
        e = Event()
        e.ParseFromString(data)
        if e.file_version:
            out["file_version"] = e.file_version
        for v in e.summary.value:
            out["scalars"].append([e.step, v.tag, v.simple_value, e.wall_time])
        pos += 16 + length
        n += 1
    out["records"] = n
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
