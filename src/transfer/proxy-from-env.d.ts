/** Types of `proxy-from-env` 2 (it ships none). */
declare module "proxy-from-env" {
  /**
   * The proxy URL for `url` from `<scheme>_proxy` / `all_proxy` (either case), or `""` when none
   * applies (no proxy set, or the host is listed in `no_proxy`).
   */
  export function getProxyForUrl(url: string | URL): string;
}
