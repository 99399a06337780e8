"""Which saved functions call which, read from ``saved_model.pb``'s function library.

TensorFlow writes a call to another function as a node (``PartitionedCall``,
``StatefulPartitionedCall``, a loop's ``body``...) whose attribute names the callee. The
names in the file are the saved ones, so they are read there rather than after
``tf.saved_model.load``, which may rename what it restores.
"""

import os

from conformance.savedmodel.tree import CALL_FUNCTIONS


def read_meta_graph(path):
    """The (single) MetaGraphDef of the SavedModel directory ``path``."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(os.fspath(path), "saved_model.pb"), "rb") as file:
        proto.ParseFromString(file.read())
    return proto.meta_graphs[0]


def _callees(attr_values):
    """The function names an op's attributes refer to (single functions and lists)."""
    names = []
    for value in attr_values:
        if value.HasField("func"):
            names.append(value.func.name)
        elif value.HasField("list"):
            names.extend(func.name for func in value.list.func)
    return names


def reachable_functions(meta_graph, names):
    """``names`` and every library function they call, directly or not."""
    library = {f.signature.name: f for f in meta_graph.graph_def.library.function}
    seen, stack = set(names), list(names)
    while stack:
        name = stack.pop()
        function = library.get(name)
        if function is None:
            continue
        for node in function.node_def:
            for callee in _callees(node.attr.values()):
                if callee not in seen:
                    seen.add(callee)
                    stack.append(callee)
    return seen


def signature_functions(meta_graph, key="serving_default"):
    """The functions the signature's output nodes in the main graph call (its wrapper)."""
    signature = meta_graph.signature_def[key]
    wanted = {info.name.lstrip("^").split(":")[0] for info in signature.outputs.values()}
    return {
        callee
        for node in meta_graph.graph_def.node
        if node.name in wanted
        for callee in _callees(node.attr.values())
    }


def layer_call_functions(meta_graph):
    """``{function name: where}`` for every saved layer's call functions.

    The call functions are the children named in ``tree.CALL_FUNCTIONS`` of every
    ``keras_api`` object (the root's and every layer's reached from it); ``where`` reads
    ``root.keras_api.layers.0.keras_api.__call__``.
    """
    nodes = meta_graph.object_graph_def.nodes
    paths, queue = {0: "root"}, [0]
    while queue:  # breadth first: each object under its shortest path
        node_id = queue.pop(0)
        for child in nodes[node_id].children:
            if child.node_id not in paths:
                paths[child.node_id] = f"{paths[node_id]}.{child.local_name}"
                queue.append(child.node_id)
    found = {}
    for node_id in sorted(paths):
        for api in nodes[node_id].children:
            if api.local_name != "keras_api":
                continue
            for child in nodes[api.node_id].children:
                function = nodes[child.node_id]
                if child.local_name in CALL_FUNCTIONS and function.WhichOneof("kind") == "function":
                    where = f"{paths[node_id]}.keras_api.{child.local_name}"
                    for name in function.function.concrete_functions:
                        found.setdefault(name, where)
    return found


def layer_functions_called_by_signature(path, key="serving_default"):
    """``[(object path, function name)]`` of the saved layer call functions that the
    signature ``key`` reaches, sorted; empty when it calls none (a flat signature)."""
    meta_graph = read_meta_graph(path)
    layer_functions = layer_call_functions(meta_graph)
    reached = reachable_functions(meta_graph, signature_functions(meta_graph, key))
    return sorted((layer_functions[name], name) for name in reached if name in layer_functions)
