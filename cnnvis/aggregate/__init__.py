"""Aggregation of a network for display: layer clusters, neuron clusters, representatives, edge bundles,
matrix reordering, and user edits as pure functions from one Aggregation to the next."""
from cnnvis.aggregate._aggregate import aggregate
from cnnvis.aggregate._edits import (collapse_layer_clusters, expand_layer_cluster, merge_bundles, move_neuron,
                                     set_cluster_count, set_representative_layer, set_representative_neurons)
from cnnvis.aggregate._types import AggregateOptions, Aggregation, BundleSet, LayerCluster, NeuronClusters

__all__ = ["aggregate", "Aggregation", "AggregateOptions", "BundleSet", "LayerCluster", "NeuronClusters",
           "move_neuron", "merge_bundles", "expand_layer_cluster", "collapse_layer_clusters", "set_cluster_count",
           "set_representative_layer", "set_representative_neurons"]
