"""The cases of parity.py: one small net per layer type and option (see parity.py).

case(name, inputs, layers, ...): `inputs` are Parameter layers (X: learnable values drawn
uniformly from [lo, hi]; F: fixed values; LBL: integer labels in [lo, hi]; V/FV: given
values, learnable or fixed), `layers` the layer text under test. Options: outputs (the tops
that get a loss; default every top of `layers`), loss_tops (tops that are losses already),
skip_tops, reduce_loss (a Reduction SUMSQ loss instead of EuclideanLoss against a target:
for outputs whose shape depends on the data), train/test (run that comparison),
param_range (draw the layer's parameters from this range instead of keeping Caffe's
fillers), net (a whole net, `test` only), solver (with net: compare what `train` prints),
known_difference (crema differs on purpose; the reason). Not here: STOCHASTIC pooling
(Caffe's CPU code has none) and ImageData (a Caffe built without OpenCV has none).
$ROOT in a net is the repository root.
"""
from dataclasses import dataclass, field
from typing import List, Optional, Tuple


@dataclass
class Input:
    name: str
    shape: List[int]
    kind: str  # float (learnable), fixed, label
    lo: float = -1
    hi: float = 1
    values: Optional[List[float]] = None


@dataclass
class Case:
    name: str
    inputs: List[Input] = field(default_factory=list)
    layers: str = ''
    outputs: List[str] = field(default_factory=list)
    loss_tops: List[str] = field(default_factory=list)
    skip_tops: List[str] = field(default_factory=list)
    reduce_loss: bool = False
    train: bool = True
    test: bool = True
    param_range: Optional[Tuple[float, float]] = None
    net: str = ''
    iterations: int = 1
    solver: str = ''
    known_difference: str = ''  # why crema differs from Caffe here on purpose


def case(name, **kw):
    return Case(name, **kw)


def X(shape, lo=-1, hi=1, name='x'):
    return Input(name, shape, 'float', lo, hi)


def F(name, shape, lo=-1, hi=1):
    return Input(name, shape, 'fixed', lo, hi)


def LBL(name, shape, lo, hi):
    return Input(name, shape, 'label', lo, hi)


def V(name, shape, values):
    return Input(name, shape, 'fixed', values=values)


def FV(name, shape, values):
    return Input(name, shape, 'float', values=values)


# Uniform fillers, so that Caffe's setup gives every parameter non-zero values.
U = 'weight_filler { type: "uniform" min: -1 max: 1 } bias_filler { type: "uniform" min: -1 max: 1 }'


def L(name, typ, bottoms, tops, extra=''):
    return 'layer { name: "%s" type: "%s" %s %s %s }' % (
        name, typ, ' '.join('bottom: "%s"' % b for b in bottoms),
        ' '.join('top: "%s"' % t for t in tops), extra)


def one(name, typ, extra, shape=(2, 3, 5, 4), lo=-1, hi=1, **kw):
    """A one-bottom, one-top layer on x of `shape`."""
    return case(name, inputs=[X(list(shape), lo, hi)], layers=L('L', typ, ['x'], ['y'], extra), **kw)


FASHION = '$ROOT/data/fashion_mnist/fashion_%s_lmdb'


def data_layer(phase, transform, batch, split='test'):
    return ('layer { name: "d" type: "Data" top: "data" top: "label" include { phase: %s } '
            'transform_param { %s } data_param { source: "%s" batch_size: %d backend: LMDB } }\n'
            % (phase, transform, FASHION % split, batch))


CASES = [
 one('conv', 'Convolution', 'convolution_param { num_output: 4 kernel_size: 3 stride: 2 pad: 1 %s }' % U, [2,3,7,6]),
 one('conv_group_dil', 'Convolution', 'convolution_param { num_output: 4 group: 2 kernel_size: 3 dilation: 2 pad: 2 %s }' % U, [2,4,7,6]),
 one('conv_rect_nobias', 'Convolution', 'convolution_param { num_output: 3 bias_term: false kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 0 %s }' % U, [2,3,7,6]),
 one('conv_1x1', 'Convolution', 'convolution_param { num_output: 5 kernel_size: 1 %s }' % U, [2,3,4,4]),
 one('conv_depthwise', 'Convolution', 'convolution_param { num_output: 4 group: 4 kernel_size: 3 stride: 2 pad: 1 %s }' % U, [2,4,7,7]),
 one('conv_3d', 'Convolution', 'convolution_param { num_output: 2 kernel_size: 2 kernel_size: 3 kernel_size: 2 stride: 1 pad: 1 %s }' % U, [2,2,4,5,3]),
 one('deconv', 'Deconvolution', 'convolution_param { num_output: 3 kernel_size: 4 stride: 2 pad: 1 %s }' % U, [2,4,3,3]),
 one('deconv_group', 'Deconvolution', 'convolution_param { num_output: 4 group: 2 kernel_size: 3 stride: 2 %s }' % U, [2,4,3,4]),
 one('pool_max_ceil', 'Pooling', 'pooling_param { pool: MAX kernel_size: 3 stride: 2 }', [2,3,7,6]),
 one('pool_max_pad', 'Pooling', 'pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 }', [2,3,6,6]),
 one('pool_ave_pad', 'Pooling', 'pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 }', [2,3,7,6]),
 one('pool_ave_ceil', 'Pooling', 'pooling_param { pool: AVE kernel_size: 3 stride: 2 }', [2,3,8,6]),
 one('pool_global', 'Pooling', 'pooling_param { pool: AVE global_pooling: true }', [2,3,5,4]),
 one('pool_global_max', 'Pooling', 'pooling_param { pool: MAX global_pooling: true }', [2,3,5,4]),
 one('pool_rect', 'Pooling', 'pooling_param { pool: MAX kernel_h: 2 kernel_w: 3 stride_h: 1 stride_w: 2 pad_h: 1 pad_w: 1 }', [2,2,5,7]),
 case(name='pool_mask', inputs=[X([2,3,6,5])], layers=L('L','Pooling',['x'],['y','mask'],'pooling_param { pool: MAX kernel_size: 2 stride: 2 }'), skip_tops=['mask']),
 one('lrn_across', 'LRN', 'lrn_param { local_size: 5 alpha: 0.5 beta: 0.75 k: 2 }', [2,7,3,3]),
 one('lrn_within', 'LRN', 'lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 norm_region: WITHIN_CHANNEL }', [2,2,5,4]),
 one('spp_max', 'SPP', 'spp_param { pyramid_height: 3 pool: MAX }', [2,2,8,6]),
 one('spp_ave', 'SPP', 'spp_param { pyramid_height: 2 pool: AVE }', [2,2,6,6]),
 one('im2col', 'Im2col', 'convolution_param { kernel_size: 3 stride: 2 pad: 1 }', [2,2,5,4]),
 one('ip', 'InnerProduct', 'inner_product_param { num_output: 5 %s }' % U, [3,2,3,2]),
 one('ip_axis2', 'InnerProduct', 'inner_product_param { num_output: 4 axis: 2 %s }' % U, [3,2,3,2]),
 one('ip_transpose', 'InnerProduct', 'inner_product_param { num_output: 4 transpose: true bias_term: false %s }' % U, [3,6]),
 case(name='embed', inputs=[LBL('x',[4,3],0,6)], layers=L('L','Embed',['x'],['y'],'embed_param { num_output: 3 input_dim: 7 %s }' % U)),
 one('relu', 'ReLU', '', [2,3,4,4]),
 one('relu_leaky', 'ReLU', 'relu_param { negative_slope: 0.1 }', [2,3,4,4]),
 one('prelu', 'PReLU', 'prelu_param { filler { type: "uniform" min: -1 max: 1 } }', [2,3,4,4]),
 one('prelu_shared', 'PReLU', 'prelu_param { channel_shared: true filler { type: "constant" value: 0.3 } }', [2,3,4,4]),
 one('elu', 'ELU', 'elu_param { alpha: 0.5 }', [2,3,4,4]),
 one('sigmoid', 'Sigmoid', '', [2,3,4,4], -4, 4),
 one('tanh', 'TanH', '', [2,3,4,4], -3, 3),
 one('absval', 'AbsVal', '', [2,3,4,4]),
 one('bnll', 'BNLL', '', [2,3,4,4], -3, 3),
 one('exp', 'Exp', 'exp_param { base: 2 scale: 0.5 shift: 0.3 }', [2,3,4,4]),
 one('exp_e', 'Exp', '', [2,3,4,4]),
 one('log', 'Log', 'log_param { base: 10 scale: 2 shift: 0.5 }', [2,3,4,4], 0.1, 2),
 one('log_e', 'Log', '', [2,3,4,4], 0.1, 2),
 one('power', 'Power', 'power_param { power: 2 scale: 0.5 shift: 0.3 }', [2,3,4,4]),
 one('power_sqrt', 'Power', 'power_param { power: 0.5 scale: 2 shift: 0.1 }', [2,3,4,4], 0.1, 2),
 one('power_lin', 'Power', 'power_param { power: 1 scale: 2 shift: 0.1 }', [2,3,4,4]),
 one('clip', 'Clip', 'clip_param { min: -0.5 max: 0.6 }', [2,3,4,4]),
 one('swish', 'Swish', 'swish_param { beta: 1.5 }', [2,3,4,4], -3, 3),
 case(name='threshold', inputs=[F('x',[2,3,4,4])], layers=L('L','Threshold',['x'],['y'],'threshold_param { threshold: 0.2 }'), train=False),
 case(name='dropout_test', inputs=[F('x',[2,3,4,4])], layers=L('L','Dropout',['x'],['y'],'dropout_param { dropout_ratio: 0.3 }'), train=False),
 one('bn_train', 'BatchNorm', 'batch_norm_param { moving_average_fraction: 0.9 eps: 0.001 }', [3,3,4,2], param_range=(0.2, 1)),
 one('bn_global', 'BatchNorm', 'batch_norm_param { use_global_stats: true }', [3,3,4,2], param_range=(0.2, 1)),
 one('bn_2d', 'BatchNorm', '', [5,4], param_range=(0.2, 1)),
 one('scale', 'Scale', 'scale_param { bias_term: true filler { type: "uniform" min: -1 max: 1 } bias_filler { type: "uniform" min: -1 max: 1 } }', [2,3,4,4]),
 one('scale_axis', 'Scale', 'scale_param { axis: 2 num_axes: 2 filler { type: "uniform" min: -1 max: 1 } }', [2,3,4,4]),
 case(name='scale_2bottom', inputs=[X([2,3,4,4]), X([2,3],name='s')], layers=L('L','Scale',['x','s'],['y'],'scale_param { axis: 0 }')),
 one('bias', 'Bias', 'bias_param { filler { type: "uniform" min: -1 max: 1 } }', [2,3,4,4]),
 case(name='bias_2bottom', inputs=[X([2,3,4,4]), X([3,4],name='b')], layers=L('L','Bias',['x','b'],['y'],'bias_param { axis: 1 }')),
 case(name='eltwise_sum', inputs=[X([2,3,4]), X([2,3,4],name='x2'), X([2,3,4],name='x3')], layers=L('L','Eltwise',['x','x2','x3'],['y'],'eltwise_param { operation: SUM coeff: 1 coeff: -0.5 coeff: 2 }')),
 case(name='eltwise_prod', inputs=[X([2,3,4]), X([2,3,4],name='x2'), X([2,3,4],name='x3')], layers=L('L','Eltwise',['x','x2','x3'],['y'],'eltwise_param { operation: PROD }')),
 case(name='eltwise_max', inputs=[X([2,3,4]), X([2,3,4],name='x2'), X([2,3,4],name='x3')], layers=L('L','Eltwise',['x','x2','x3'],['y'],'eltwise_param { operation: MAX }')),
 case(name='concat', inputs=[X([2,3,4]), X([2,2,4],name='x2')], layers=L('L','Concat',['x','x2'],['y'],'')),
 case(name='concat_axis2', inputs=[X([2,3,4]), X([2,3,2],name='x2')], layers=L('L','Concat',['x','x2'],['y'],'concat_param { axis: 2 }')),
 case(name='slice', inputs=[X([2,6,3])], layers=L('L','Slice',['x'],['y1','y2','y3'],'slice_param { axis: 1 slice_point: 1 slice_point: 4 }')),
 case(name='split', inputs=[X([2,6,3])], layers=L('L','Split',['x'],['y1','y2'],'')),
 one('tile', 'Tile', 'tile_param { axis: 1 tiles: 3 }', [2,3,2]),
 one('flatten', 'Flatten', 'flatten_param { axis: 1 end_axis: 2 }', [2,3,2,2], known_difference='Caffe\'s Flatten re-points its bottom\'s diff in Backward and loses the gradient of a bottom whose diff is shared (README)'),
 one('reshape', 'Reshape', 'reshape_param { shape { dim: 0 dim: -1 dim: 2 } }', [2,3,2,2]),
 one('reduction_sum', 'Reduction', 'reduction_param { operation: SUM axis: 1 coeff: 0.5 }', [2,3,4]),
 one('reduction_asum', 'Reduction', 'reduction_param { operation: ASUM axis: 2 }', [2,3,4]),
 one('reduction_sumsq', 'Reduction', 'reduction_param { operation: SUMSQ axis: 1 coeff: -2 }', [2,3,4]),
 case(name='reduction_all', inputs=[F('x',[2,3,4])], layers=L('L','Reduction',['x'],['y'],'reduction_param { operation: SUMSQ coeff: -2 }'), train=False),
 one('reduction_mean', 'Reduction', 'reduction_param { operation: MEAN axis: 1 }', [2,3,4]),
 case(name='argmax', inputs=[F('x',[3,5,2])], layers=L('L','ArgMax',['x'],['y'],'argmax_param { top_k: 2 out_max_val: true axis: 1 }'), train=False),
 case(name='argmax_flat', inputs=[F('x',[3,5,2])], layers=L('L','ArgMax',['x'],['y'],'argmax_param { top_k: 3 out_max_val: true }'), train=False),
 one('mvn', 'MVN', '', [2,3,4,4]),
 one('mvn_mean_only', 'MVN', 'mvn_param { normalize_variance: false }', [2,3,4,4]),
 one('mvn_across', 'MVN', 'mvn_param { across_channels: true eps: 0.01 }', [2,3,4,4]),
 one('softmax', 'Softmax', '', [2,5,3], -3, 3),
 one('softmax_axis2', 'Softmax', 'softmax_param { axis: 2 }', [2,3,4], -3, 3),
 case(name='batch_reindex', inputs=[X([4,3,2]), LBL('i',[5],0,3)], layers=L('L','BatchReindex',['x','i'],['y'],'')),
 case(name='filter', inputs=[X([5,3,2]), V('sel', [5], [1,0,0,1,1])], layers=L('L','Filter',['x','sel'],['y'],''), reduce_loss=True),
 case(name='accuracy', inputs=[F('x',[6,5]), LBL('lab',[6],0,4)], layers=L('L','Accuracy',['x','lab'],['y'],'accuracy_param { top_k: 2 }'), train=False),
 case(name='accuracy_ignore_classes', inputs=[F('x',[2,4,3]), LBL('lab',[2,3],0,3)], layers=L('L','Accuracy',['x','lab'],['y','pc'],'accuracy_param { ignore_label: 1 }'), train=False),
 case(name='softmax_loss', inputs=[X([6,5],-3,3), LBL('lab',[6],0,4)], layers=L('L','SoftmaxWithLoss',['x','lab'],['y'],''), loss_tops=['y']),
 case(name='softmax_loss_spatial_ignore', inputs=[X([2,4,3,2],-3,3), LBL('lab',[2,1,3,2],0,3)], layers=L('L','SoftmaxWithLoss',['x','lab'],['y'],'loss_param { ignore_label: 2 }'), loss_tops=['y']),
 case(name='softmax_loss_norm_batch', inputs=[X([2,4,3,2],-3,3), LBL('lab',[2,1,3,2],0,3)], layers=L('L','SoftmaxWithLoss',['x','lab'],['y'],'loss_param { ignore_label: 2 normalization: BATCH_SIZE }'), loss_tops=['y']),
 case(name='softmax_loss_norm_none_w2', inputs=[X([2,4,3,2],-3,3), LBL('lab',[2,1,3,2],0,3)], layers=L('L','SoftmaxWithLoss',['x','lab'],['y'],'loss_weight: 2 loss_param { normalization: NONE }'), loss_tops=['y']),
 case(name='softmax_loss_full', inputs=[X([2,4,3,2],-3,3), LBL('lab',[2,1,3,2],0,3)], layers=L('L','SoftmaxWithLoss',['x','lab'],['y'],'loss_param { ignore_label: 0 normalization: FULL }'), loss_tops=['y']),
 case(name='sigmoid_ce', inputs=[X([3,4],-3,3), F('t',[3,4],0,1)], layers=L('L','SigmoidCrossEntropyLoss',['x','t'],['y'],''), loss_tops=['y']),
 case(name='sigmoid_ce_ignore', inputs=[X([3,4],-3,3), LBL('t',[3,4],0,2)], layers=L('L','SigmoidCrossEntropyLoss',['x','t'],['y'],'loss_param { ignore_label: 2 }'), loss_tops=['y']),
 case(name='euclidean', inputs=[X([3,4]), X([3,4],name='x2')], layers=L('L','EuclideanLoss',['x','x2'],['y'],''), loss_tops=['y']),
 case(name='hinge_l1', inputs=[X([4,5]), LBL('lab',[4],0,4)], layers=L('L','HingeLoss',['x','lab'],['y'],''), loss_tops=['y']),
 case(name='hinge_l2', inputs=[X([4,5]), LBL('lab',[4],0,4)], layers=L('L','HingeLoss',['x','lab'],['y'],'hinge_loss_param { norm: L2 }'), loss_tops=['y']),
 case(name='contrastive', inputs=[X([5,3]), X([5,3],name='x2'), LBL('sim',[5],0,1)], layers=L('L','ContrastiveLoss',['x','x2','sim'],['y'],'contrastive_loss_param { margin: 1.5 }'), loss_tops=['y']),
 case(name='contrastive_legacy', inputs=[X([5,3]), X([5,3],name='x2'), LBL('sim',[5],0,1)], layers=L('L','ContrastiveLoss',['x','x2','sim'],['y'],'contrastive_loss_param { margin: 1.5 legacy_version: true }'), loss_tops=['y']),
 case(name='infogain', inputs=[X([4,3],-2,2), LBL('lab',[4],0,2), F('H',[3,3],0,1)], layers=L('L','InfogainLoss',['x','lab','H'],['y'],''), loss_tops=['y']),
 case(name='multinomial', inputs=[X([4,3],0.05,1), LBL('lab',[4],0,2)], layers=L('L','MultinomialLogisticLoss',['x','lab'],['y'],''), loss_tops=['y']),
 case(name='rnn', inputs=[X([3,2,4]), LBL('cont',[3,2],0,1)], layers=L('L','RNN',['x','cont'],['y'],'recurrent_param { num_output: 3 %s }' % U)),
 case(name='lstm', inputs=[X([3,2,4]), LBL('cont',[3,2],0,1)], layers=L('L','LSTM',['x','cont'],['y'],'recurrent_param { num_output: 3 %s }' % U)),
 case(name='lstm_static', inputs=[X([3,2,4]), LBL('cont',[3,2],0,1), X([2,5],name='xs')], layers=L('L','LSTM',['x','cont','xs'],['y'],'recurrent_param { num_output: 3 %s }' % U)),
 case(name='lstm_unit', inputs=[X([1,2,3]), X([1,2,12],name='xg'), LBL('cont',[1,2],0,1)], layers=L('L','LSTMUnit',['x','xg','cont'],['c','h'],'')),
 one('pool_max_clip', 'Pooling', 'pooling_param { pool: MAX kernel_size: 2 stride: 3 pad: 1 }', [2,2,4,4]),
 one('pool_ave_clip', 'Pooling', 'pooling_param { pool: AVE kernel_size: 2 stride: 3 pad: 1 }', [2,2,4,4]),
 one('pool_ave_big_pad', 'Pooling', 'pooling_param { pool: AVE kernel_size: 3 stride: 1 pad: 2 }', [1,2,3,3]),
 case(name='crop', inputs=[X([2,3,6,5]), F('ref',[1,1,3,2])], layers=L('L','Crop',['x','ref'],['y'],'crop_param { axis: 2 offset: 1 offset: 2 }')),
 case(name='crop_axis1', inputs=[X([2,3,6,5]), F('ref',[1,2,4,4])], layers=L('L','Crop',['x','ref'],['y'],'crop_param { axis: 1 offset: 1 }')),
 case(name='silence', inputs=[X([2,3]), X([2,3],name='x2')], layers=L('S','Silence',['x'],[],'') + L('L','AbsVal',['x2'],['y'],''), outputs=['y'], reduce_loss=True),
 case(name='eltwise_prod_unstable', inputs=[X([2,3,4]), X([2,3,4],name='x2')], layers=L('L','Eltwise',['x','x2'],['y'],'eltwise_param { operation: PROD stable_prod_grad: false }')),
 case(name='relu_zeros', inputs=[FV('x', [2,4], [0,1,-1,0,2,0,-3,0.5])], layers=L('L','ReLU',['x'],['y'],'relu_param { negative_slope: 0.2 }')),
 case(name='elu_zeros', inputs=[FV('x', [2,4], [0,1,-1,0,2,0,-3,0.5])], layers=L('L','ELU',['x'],['y'],'')),
 case(name='absval_zeros', inputs=[FV('x', [2,4], [0,1,-1,0,2,0,-3,0.5])], layers=L('L','AbsVal',['x'],['y'],'')),
 case(name='clip_edges', inputs=[FV('x', [2,4], [-0.5,0.6,-1,0,2,0.6,-0.5,0.5])], layers=L('L','Clip',['x'],['y'],'clip_param { min: -0.5 max: 0.6 }')),
 case(name='eltwise_max_ties', inputs=[FV('x', [2,3], [1,2,3,4,5,6]), FV('x2', [2,3], [1,0,3,5,5,1])], layers=L('L','Eltwise',['x','x2'],['y'],'eltwise_param { operation: MAX }')),
 case(name='pool_max_ties', inputs=[FV('x', [1,1,4,4], [1,1,2,2, 1,1,2,2, 0,3,3,0, 3,0,0,3])], layers=L('L','Pooling',['x'],['y'],'pooling_param { pool: MAX kernel_size: 2 stride: 1 }')),
 case(name='accuracy_ties', inputs=[V('x', [4,4], [1,1,0,0, 2,2,2,2, 0,1,1,1, 3,1,3,0]), V('lab', [4], [1,3,0,2])], layers=L('L','Accuracy',['x','lab'],['y'],'accuracy_param { top_k: 2 }'), train=False),
 case(name='argmax_ties', inputs=[V('x', [3,4], [1,1,0,0, 2,2,2,2, 0,1,3,1])], layers=L('L','ArgMax',['x'],['y'],'argmax_param { top_k: 2 }'), train=False),
 case(name='argmax_ties_val', inputs=[V('x', [3,4], [1,1,0,0, 2,2,2,2, 0,1,3,1])], layers=L('L','ArgMax',['x'],['y'],'argmax_param { top_k: 2 out_max_val: true }'), train=False),
 case(name='argmax_axis_ties', inputs=[V('x', [2,3], [1,1,0, 2,2,2])], layers=L('L','ArgMax',['x'],['y'],'argmax_param { axis: 1 top_k: 2 }'), train=False),
 one('bnll_big', 'BNLL', '', [2,3,4,4], -80, 80),
 one('power_cube_neg', 'Power', 'power_param { power: 3 scale: -1 shift: 0.2 }', [2,3,4]),
 one('power_zero', 'Power', 'power_param { power: 0 scale: 2 }', [2,3,4]),
 one('power_inv', 'Power', 'power_param { power: -1 shift: 2 }', [2,3,4]),
 one('exp_base_e_scaled', 'Exp', 'exp_param { base: -1 scale: 2 shift: -1 }', [2,3,4]),
 one('scale_scalar', 'Scale', 'scale_param { num_axes: 0 bias_term: true filler { type: "uniform" min: -1 max: 1 } bias_filler { type: "uniform" min: -1 max: 1 } }', [2,3,4]),
 one('bias_scalar', 'Bias', 'bias_param { num_axes: 0 filler { type: "uniform" min: -1 max: 1 } }', [2,3,4]),
 one('tile_neg', 'Tile', 'tile_param { axis: -1 tiles: 2 }', [2,3,2]),
 case(name='sigmoid_ce_batch', inputs=[X([3,4],-3,3), LBL('t',[3,4],0,2)], layers=L('L','SigmoidCrossEntropyLoss',['x','t'],['y'],'loss_param { ignore_label: 2 normalization: BATCH_SIZE }'), loss_tops=['y']),
 case(name='sigmoid_ce_full', inputs=[X([3,4],-3,3), F('t',[3,4],0,1)], layers=L('L','SigmoidCrossEntropyLoss',['x','t'],['y'],'loss_weight: 3 loss_param { normalization: FULL }'), loss_tops=['y']),
 case(name='euclidean_w', inputs=[X([3,2,2]), X([3,2,2],name='x2')], layers=L('L','EuclideanLoss',['x','x2'],['y'],'loss_weight: 0.5'), loss_tops=['y']),
 case(name='infogain_spatial', inputs=[X([2,3,2,2],-2,2), LBL('lab',[2,1,2,2],0,2), F('H',[3,3],0,1)], layers=L('L','InfogainLoss',['x','lab','H'],['y'],'infogain_loss_param { axis: 1 }'), loss_tops=['y']),
 case(name='infogain_ignore', inputs=[X([4,3],-2,2), LBL('lab',[4],0,2), F('H',[3,3],0,1)], layers=L('L','InfogainLoss',['x','lab','H'],['y'],'loss_param { ignore_label: 1 normalization: VALID }'), loss_tops=['y']),
 case(name='lstm_expose', inputs=[X([3,2,4]), LBL('cont',[3,2],0,1), X([1,2,3],name='h0'), X([1,2,3],name='c0')], layers=L('L','LSTM',['x','cont','h0','c0'],['y','hT','cT'],'recurrent_param { num_output: 3 expose_hidden: true %s }' % U)),
 case(name='rnn_static_expose', inputs=[X([3,2,4]), LBL('cont',[3,2],0,1), X([2,5],name='xs'), X([1,2,3],name='h0')], layers=L('L','RNN',['x','cont','xs','h0'],['y','hT'],'recurrent_param { num_output: 3 expose_hidden: true %s }' % U)),
 case(name='shared_weights', inputs=[X([3,4]), X([3,4],name='x2')], layers=L('L','InnerProduct',['x'],['y1'],'param { name: "w" } param { name: "b" } inner_product_param { num_output: 2 %s }' % U) + L('L2','InnerProduct',['x2'],['y2'],'param { name: "w" } param { name: "b" } inner_product_param { num_output: 2 %s }' % U), outputs=['y1','y2'], reduce_loss=True),
 case(name='shared_weights_lr', inputs=[X([3,4]), X([3,4],name='x2')], layers=L('L','InnerProduct',['x'],['y1'],'param { name: "w" lr_mult: 2 } param { name: "b" lr_mult: 3 } inner_product_param { num_output: 2 %s }' % U) + L('L2','InnerProduct',['x2'],['y2'],'param { name: "w" lr_mult: 2 } param { name: "b" lr_mult: 3 } inner_product_param { num_output: 2 %s }' % U), outputs=['y1','y2'], reduce_loss=True),
 case(name='split_fanout', inputs=[X([3,4])], layers=L('L','AbsVal',['x'],['y1'],'') + L('L2','TanH',['x'],['y2'],'') + L('L3','Eltwise',['y1','y2','x'],['y3'],''), outputs=['y3'], reduce_loss=True),
 case(name='inplace_chain', inputs=[X([2,3,4,4])], layers=L('L','Convolution',['x'],['y'],'convolution_param { num_output: 3 kernel_size: 3 pad: 1 %s }' % U) + L('bn','BatchNorm',['y'],['y'],'') + L('sc','Scale',['y'],['y'],'scale_param { bias_term: true filler { type: "uniform" min: -1 max: 1 } bias_filler { type: "uniform" min: -1 max: 1 } }') + L('r','ReLU',['y'],['y'],''), outputs=['y'], reduce_loss=True),
 case(name='loss_weight_on_ip', inputs=[X([3,4])], layers=L('L','InnerProduct',['x'],['y'],'loss_weight: 0.7 inner_product_param { num_output: 1 %s }' % U), loss_tops=['y']),
 case(name='propagate_down_false', inputs=[X([3,4]), X([3,4],name='x2')], layers=L('L','Eltwise',['x','x2'],['y'],'propagate_down: true propagate_down: false eltwise_param { operation: PROD }'), reduce_loss=True),
 case(name='dropout_inplace_test', inputs=[F('x',[2,3])], layers=L('L','Dropout',['x'],['x'],''), outputs=['x'], train=False),
 case(name='concat_single', inputs=[X([2,3,4])], layers=L('L','Concat',['x'],['y'],'')),
 case(name='slice_single', inputs=[X([2,3,4])], layers=L('L','Slice',['x'],['y'],'slice_param { axis: 1 }')),
 case(name='reshape_flatten_chain', inputs=[X([2,3,4])], layers=L('L','Reshape',['x'],['y'],'reshape_param { shape { dim: 0 dim: 2 dim: -1 } }') + L('L2','Flatten',['y'],['z'],''), outputs=['z'], reduce_loss=True, known_difference='Caffe\'s Flatten re-points its bottom\'s diff in Backward and loses the gradient of a bottom whose diff is shared (README)'),
 case(name='conv_reshape', inputs=[X([2,3,4,4])], layers=L('L','Convolution',['x'],['y'],'convolution_param { num_output: 2 kernel_size: 3 %s }' % U) + L('L2','Reshape',['y'],['z'],'reshape_param { shape { dim: 0 dim: -1 } }'), outputs=['z'], reduce_loss=True),
]

CASES += [
    # Data layers (need `bash tools/main_job.sh`'s Fashion-MNIST LMDBs): transforms at test.
    case('data_crop_mean_scale', net=data_layer('TEST', 'crop_size: 24 mean_value: 33 scale: 0.02', 2), iterations=2),
    case('data_force_color', net=data_layer('TEST', 'force_color: true mean_value: 10', 2)),
    case('data_scale_only', net=data_layer('TEST', 'scale: 0.00390625', 3)),
    # Training with random crops and mirrors in both phases, test passes included.
    case('train_crop_mirror',
         net=data_layer('TRAIN', 'crop_size: 26 mirror: true mean_value: 33 scale: 0.01', 4, 'train') +
         data_layer('TEST', 'crop_size: 26 mirror: true mean_value: 33 scale: 0.01', 3) +
         L('conv', 'Convolution', ['data'], ['conv'], 'convolution_param { num_output: 4 kernel_size: 3 stride: 2 weight_filler { type: "xavier" } }') +
         L('relu', 'ReLU', ['conv'], ['conv']) +
         L('ip', 'InnerProduct', ['conv'], ['ip'], 'inner_product_param { num_output: 10 weight_filler { type: "uniform" min: -0.1 max: 0.1 } }') +
         L('loss', 'SoftmaxWithLoss', ['ip', 'label'], ['loss']) +
         L('acc', 'Accuracy', ['ip', 'label'], ['acc'], 'include { phase: TEST }'),
         solver='base_lr: 0.05\nmomentum: 0.9\nweight_decay: 0.0005\nlr_policy: "fixed"\nmax_iter: 12\n'
                'display: 1\ntest_iter: 2\ntest_interval: 4\nsnapshot_after_train: false\n'),
]
