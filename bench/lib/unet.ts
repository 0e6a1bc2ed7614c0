/**
 * The benchmark U-Net, built from packages/torch modules only, 2D or 3D:
 * per level two (3x3 conv, no bias -> BatchNorm -> ReLU), max-pool 2 down,
 * transposed conv (kernel 2, stride 2) up, skip concatenation, 1x1 conv to the
 * classes. bench/py/train_step.py builds the identical network in PyTorch
 * (same layers, same order, same parameter count - the bench checks it).
 */
import * as torch from '@medseg/torch';

const { nn } = torch;
type Tensor = torch.Tensor;

class ConvBlock extends nn.UnaryModule {
  readonly seq: torch.nn.Sequential;
  constructor(dims: 2 | 3, cin: number, cout: number) {
    super();
    const Conv = dims === 2 ? nn.Conv2d : nn.Conv3d;
    this.seq = this.module(
      'seq',
      new nn.Sequential(
        new Conv(cin, cout, 3, { padding: 1, bias: false }),
        new nn.BatchNorm(cout),
        new nn.ReLU(),
        new Conv(cout, cout, 3, { padding: 1, bias: false }),
        new nn.BatchNorm(cout),
        new nn.ReLU(),
      ),
    );
  }
  forward(x: Tensor): Tensor {
    return this.seq.forward(x);
  }
}

export class BenchUNet extends nn.UnaryModule {
  readonly down: torch.nn.ModuleList<ConvBlock>;
  readonly ups: torch.nn.ModuleList<torch.nn.ConvTransposeNd>;
  readonly upBlocks: torch.nn.ModuleList<ConvBlock>;
  readonly head: torch.nn.ConvNd;
  readonly pool: torch.nn.MaxPool;
  constructor(
    readonly dims: 2 | 3,
    readonly channels: number[],
    inChannels = 1,
    classes = 2,
  ) {
    super();
    const ConvT = dims === 2 ? nn.ConvTranspose2d : nn.ConvTranspose3d;
    const Conv = dims === 2 ? nn.Conv2d : nn.Conv3d;
    this.down = this.module('down', new nn.ModuleList(channels.map((c, i) => new ConvBlock(dims, i === 0 ? inChannels : channels[i - 1]!, c))));
    const ups: torch.nn.ConvTransposeNd[] = [];
    const upBlocks: ConvBlock[] = [];
    for (let i = channels.length - 1; i > 0; i--) {
      ups.push(new ConvT(channels[i]!, channels[i - 1]!, 2, { stride: 2 }));
      upBlocks.push(new ConvBlock(dims, 2 * channels[i - 1]!, channels[i - 1]!));
    }
    this.ups = this.module('ups', new nn.ModuleList(ups));
    this.upBlocks = this.module('up_blocks', new nn.ModuleList(upBlocks));
    this.head = this.module('head', new Conv(channels[0]!, classes, 1));
    this.pool = new nn.MaxPool(2);
  }
  forward(x: Tensor): Tensor {
    const skips: Tensor[] = [];
    let h = x;
    this.down.items.forEach((block, i) => {
      if (i > 0) h = this.pool.forward(h);
      h = block.forward(h);
      skips.push(h);
    });
    skips.pop();
    for (let i = 0; i < this.ups.length; i++) {
      const up = this.ups.at(i).forward(h);
      h = this.upBlocks.at(i).forward(torch.cat([up, skips.pop()!], 1));
    }
    return this.head.forward(h);
  }
}

/**
 * Multiply-accumulates of one forward pass, convs and transposed convs only
 * (BatchNorm, ReLU, pooling and concatenation are memory-bound and small).
 */
export function unetForwardMacs(dims: 2 | 3, channels: number[], inputSpatial: number[], batch: number, inChannels = 1, classes = 2): number {
  const k = 3 ** dims;
  const vox = (level: number) => inputSpatial.reduce((a, s) => a * Math.floor(s / 2 ** level), 1);
  let macs = 0;
  channels.forEach((c, i) => {
    const cin = i === 0 ? inChannels : channels[i - 1]!;
    macs += vox(i) * (cin * c * k + c * c * k);
  });
  for (let i = channels.length - 1; i > 0; i--) {
    const cin = channels[i]!;
    const cout = channels[i - 1]!;
    // ConvTranspose k=2 s=2: every input voxel meets 2^dims kernel taps.
    macs += vox(i) * cin * cout * 2 ** dims;
    macs += vox(i - 1) * (2 * cout * cout * k + cout * cout * k);
  }
  macs += vox(0) * channels[0]! * classes;
  return macs * batch;
}
