// The fault switch both test servers share: one current fault, applied to the requests it
// matches, `count` times at most; requests held by a `hang` proceed once it is lifted.

export interface BaseFault {
  /** The shared modes below; a server may add its own (the S3 stand-in's data faults). */
  mode: 'none' | 'reset' | 'status' | 'slow' | 'hang' | 'lose-answer' | (string & {})
  /** How many matching requests are faulted (default: unlimited). */
  count?: number
  /** How many matching requests pass untouched before the fault applies (default 0): a failure half-way. */
  skip?: number
}

export class FaultSwitch<F extends BaseFault> {
  private fault: F
  private hung: Array<() => void> = []

  constructor(private readonly none: F) {
    this.fault = none
  }

  get current(): F {
    return this.fault
  }

  set(fault: F): void {
    this.fault = fault
    if (fault.mode !== 'hang') {
      const waiting = this.hung
      this.hung = []
      for (const release of waiting) release()
    }
  }

  /** The fault for this request, if the current one matches it; consumes one unit of `count`. */
  take(matches: (fault: F) => boolean): F | undefined {
    const fault = this.fault
    if (fault.mode === 'none' || !matches(fault)) return undefined
    if (fault.skip !== undefined && fault.skip > 0) {
      fault.skip -= 1
      return undefined
    }
    if (fault.count !== undefined) {
      if (fault.count <= 0) return undefined
      fault.count -= 1
      if (fault.count === 0) this.set(this.none)
    }
    return { ...fault }
  }

  /** Resolves when the current hang is lifted. */
  hang(): Promise<void> {
    return new Promise(resolve => this.hung.push(resolve))
  }
}
