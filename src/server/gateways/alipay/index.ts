export {
  ALIPAY_AUTO_CLOSE_MS,
  AlipayGateway,
  AlipayGatewayOptions,
  startAlipayGateway,
} from './alipay.gateway';
export { GatewayTrade, TradeStatus } from './ledger';
