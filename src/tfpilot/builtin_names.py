"""The built-in names of the lazily loaded registries, with what a config needs of each (tags,
keyword parameters -- None: any --, extras), so validating a config that names only built-ins
imports none of the modules that define them (nor TensorFlow).

Data only, kept equal to the real registrations by ``tests/test_registry.py``, which prints this
file anew when a built-in is added or changed.
"""

from __future__ import annotations

from typing import Any

#: {registry kind: {name: (tags, keyword parameters space-separated or None (any), extras)}}
BUILTIN_NAMES: dict[str, dict[str, tuple[tuple[str, ...], str | None, dict[str, Any]]]] = {
    'loss': {
        'crossentropy': (('classification',), '', {}),
        'huber': (('regression',), 'delta', {}),
        'log_cosh': (('regression',), '', {}),
        'mae': (('regression',), '', {}),
        'mse': (('regression',), '', {}),
        'mse_mae': (('regression',), 'mse_weight mae_weight', {}),
    },
    'model': {
        'airbench': (('image',), 'input_spec num_classes widths whiten_patch whiten_epsilon '
            'whiten_bias bn_momentum bn_epsilon activation logit_scale', {}),
        'bilstm': (('text',), 'input_spec num_classes vocab_size sequence_length '
            'embedding_dim units dense_units dropout tokenize', {}),
        'cifar_cnn': (('image',), 'input_spec num_classes', {}),
        'cifar_cnn_bn': (('image',), 'input_spec num_classes', {}),
        'cnn1d': (('text',), 'input_spec num_classes vocab_size sequence_length '
            'embedding_dim filters kernel_size dense_units dropout tokenize', {}),
        'cnn_bn_gap': (('image',), 'input_spec num_classes', {}),
        'efficientnet_b0': (('image',), 'input_spec num_classes weights image_size dropout '
            'dense_units pooling freeze_backbone bn_momentum', {}),
        'fast_cnn': (('image',), 'input_spec num_classes filters convs_per_stage dense_units '
            'dropout padding batch_norm bn_momentum', {}),
        'gru': (('text',), 'input_spec num_classes vocab_size sequence_length '
            'embedding_dim units dropout tokenize', {}),
        'linear': (('table',), 'input_spec num_classes encoders', {}),
        'lstm': (('text',), 'input_spec num_classes vocab_size sequence_length '
            'embedding_dim units dropout recurrent_dropout binary_head padding truncating tokenize', {}),
        'lstm_dense': (('text',), 'input_spec num_classes vocab_size sequence_length '
            'embedding_dim units dense_units dropout recurrent_dropout dense_dropout tokenize', {}),
        'mini_resnet': (('image',), 'input_spec num_classes', {}),
        'mlp': (('image',), 'input_spec num_classes hidden_units dropout batch_norm', {}),
        'mnist_cnn': (('image',), 'input_spec num_classes dropout', {}),
        'mobilenet_v2': (('image',), 'input_spec num_classes weights image_size dropout '
            'dense_units pooling freeze_backbone bn_momentum alpha', {}),
        'multitask': (('table',), 'input_spec num_classes encoders hidden_units dropout norm '
            'activation input_dropout', {}),
        'ngram_mlp': (('text',), 'input_spec num_classes vocab_size ngrams output_mode '
            'sublinear_tf normalize hidden_units dropout sparse naive_bayes nb_alpha tokenize input_scale', {}),
        'resnet': (('image',), 'input_spec num_classes', {}),
        'resnet50': (('image',), 'input_spec num_classes weights image_size dropout '
            'dense_units pooling freeze_backbone bn_momentum', {}),
        'small_cnn': (('image',), 'input_spec num_classes', {}),
        'transformer': (('text',), 'input_spec num_classes vocab_size sequence_length d_model '
            'num_heads dff rate dense_units dropout tokenize', {}),
        'vgg16': (('image',), 'input_spec num_classes weights image_size dropout '
            'dense_units pooling freeze_backbone bn_momentum', {}),
        'ydf_gbt': (('table', 'forest'), 'input_spec num_classes encoders num_trees max_depth '
            'min_examples num_candidate_attributes_ratio growing_strategy max_num_nodes num_threads shrinkage subsample l1_regularization l2_regularization early_stopping early_stopping_num_trees_look_ahead categorical_algorithm split_axis sparse_oblique_normalization sparse_oblique_num_projections_exponent maximum_training_duration_seconds validation_ratio num_trees_by_head', {}),
        'ydf_rf': (('table', 'forest'), 'input_spec num_classes encoders num_trees max_depth '
            'min_examples num_candidate_attributes_ratio growing_strategy max_num_nodes num_threads winner_take_all bootstrap_training_dataset categorical_algorithm split_axis sparse_oblique_normalization sparse_oblique_num_projections_exponent maximum_training_duration_seconds', {}),
    },
    'optimizer': {
        'adagrad': ((), 'cfg lr kw', {}),
        'adam': ((), 'cfg lr kw', {}),
        'adamw': ((), 'cfg lr kw', {}),
        'rmsprop': ((), 'cfg lr kw', {}),
        'sgd': ((), 'cfg lr kw', {}),
    },
    'schedule': {
        'constant': ((), 'cfg lr steps_per_epoch epochs', {'keys': ('warmup_epochs',)}),
        'cosine': ((), 'cfg lr steps_per_epoch epochs', {'keys': ('warmup_epochs', 'min_lr_ratio')}),
        'cosine_restarts': ((), 'cfg lr steps_per_epoch '
            'epochs', {'keys': ('warmup_epochs', 'min_lr_ratio', 'cycle_epochs', 'cycle_mult', 'peak_mult')}),
        'exponential': ((), 'cfg lr steps_per_epoch epochs', {'keys': ('warmup_epochs', 'decay_rate')}),
        'one_cycle': ((), 'cfg lr steps_per_epoch epochs', {'keys': ('warmup_epochs',)}),
        'step': ((), 'cfg lr steps_per_epoch epochs', {'keys': ('warmup_epochs', 'step_epochs', 'step_factor')}),
        'warmup_cosine': ((), 'cfg lr steps_per_epoch epochs', {'keys': ('warmup_epochs', 'min_lr_ratio')}),
    },
}
