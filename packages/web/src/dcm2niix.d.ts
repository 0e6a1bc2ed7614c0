/** The part of @niivue/dcm2niix (a JavaScript package without types) the viewer uses. */
declare module '@niivue/dcm2niix' {
  interface Processor {
    /** -b: BIDS sidecar (y/n/o). */
    b(value: 'y' | 'n' | 'o'): Processor;
    /** -z: gzip the NIfTI (y/n/o/i). */
    z(value: 'y' | 'n' | 'o' | 'i'): Processor;
    /** -f: output file name pattern (%s series number, %d description, ...). */
    f(pattern: string): Processor;
    run(): Promise<File[]>;
  }
  export class Dcm2niix {
    /** The worker init() starts (null before). */
    worker: { terminate(): void } | null;
    init(): Promise<boolean>;
    input(files: ArrayLike<File> | File[]): Processor;
  }
}
