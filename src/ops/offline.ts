/**
 * Offline mode (`--offline`, `AXVISOR_IMAGE_OFFLINE=1`): the errors of what needs the network,
 * raised before any connection is opened, so that an offline run fails closed.
 */
import type { Config } from "../config/config.js";
import { AxError } from "../errors.js";

/** How the user turns offline mode off, for hints. */
const TURN_OFF = "drop --offline (and AXVISOR_IMAGE_OFFLINE)";

/**
 * Throws when `config` is offline: `what` (e.g. `sync`) needs the network.
 *
 * @throws AxError naming `what`.
 */
export function requireNetwork(config: Pick<Config, "offline">, what: string): void {
  if (!config.offline) return;
  throw new AxError(`${what} needs the network, and offline mode forbids it`, {
    hint: `${TURN_OFF} to allow it`,
  });
}

/** The error of an offline pull of `image`, which no verified copy in the store provides. */
export function missingOffline(image: string): AxError {
  return new AxError(
    `${image}: no verified copy in the store, and offline mode forbids downloading`,
    {
      hint: `pull it once with the network (or restore the CI cache that holds it), or ${TURN_OFF}`,
    },
  );
}
